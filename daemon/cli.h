/* daemon/cli.h: vigild's command-line usage and errors (daemon/cli.c). */
#ifndef VIGIL_CLI_H
#define VIGIL_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

/* The usage text (--help on stdout; after a bad command line on a terminal, stderr). */
void cli_usage(FILE *out);

/* A bad command line's message, "vigild: " and the reason, on one line (journal priority error
 * under systemd); with show_usage the usage text follows on a terminal. */
void cli_error(int show_usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The option getopt_long refused, for its message ("-x" in shortopt, or the word as given). */
const char *cli_bad_option(char **argv, int optind_now, int optopt_now, const char *optstring,
                           char shortopt[3]);

/* "--d", a prefix of several long options: 1, their names in list. */
int cli_ambiguous(const char *word, const struct option *o, char *list, size_t size);

/* A flag's value: refused when empty or holding a control character (0, or -1 with the
 * message on stderr). */
int cli_flag_value_check(const char *flag, const char *v);

#endif
