/* daemon/cli.c: vigild's command line: its usage text and its errors, one line each with the
 * journal's error priority under systemd (main.c parses the options with getopt_long). */
#include "cli.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cli_usage(FILE *out)
{
    fprintf(out,
            "usage: vigild [options]\n"
            "  --config FILE       read settings from FILE (INI; see etc/vigild.conf)\n"
            "  --data-dir DIR      where the database lives (default ./vigil-data)\n"
            "  --http ADDR:PORT    HTTP API address (default 127.0.0.1:8470)\n"
            "  --stream ADDR:PORT  line-protocol stream address, or 'off'\n"
            "                      (default 127.0.0.1:8471)\n"
            "  --log-level LEVEL   debug, info, warn (or warning) or error, any case (default\n"
            "                      info)\n"
            "  --auth-file FILE    bearer tokens, lines 'ROLE TOKEN' (read, write, admin)\n"
            "  --check-config      check the configuration, the token file, the certificate\n"
            "                      and the data directory, and exit (0 when a start would\n"
            "                      get past them)\n"
            "  --restore FILE      replace the data directory's database with FILE (a\n"
            "                      snapshot from POST /v1/admin/snapshot) and exit; refused\n"
            "                      while a vigild runs on it\n"
            "  --accept-damaged    with --restore: restore a snapshot holding damaged readings\n"
            "                      chunks (named on stderr) instead of refusing it\n"
            "  --demo              also run vigil-sim, a simulated pump fleet, into the\n"
            "                      stream\n"
            "  --version           print the version and exit\n"
            "  --help              print this help and exit\n"
            "Command-line options override the configuration file.\n");
}

/* A bad command line's message, "vigild: " and the reason, on one line. Under systemd it goes
 * to the journal with the error priority (the "<3>" log lines carry), so `journalctl -p err`
 * shows why the service did not start; there the usage text that follows it on a terminal is
 * left out (it would be 17 lines of priority info, none of them the reason) for a pointer to
 * --help on the same line. With show_usage, a terminal gets the usage text after it. */
void cli_error(int show_usage, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *prefix = log_journal_prefix(LOG_LEVEL_ERROR);
    if (prefix[0]) {
        fprintf(stderr, "%svigild: %s%s\n", prefix, msg,
                show_usage ? " (vigild --help lists the options)" : "");
        return;
    }
    fprintf(stderr, "vigild: %s\n", msg);
    if (show_usage)
        cli_usage(stderr);
}

/* The option getopt_long refused, for its message. optopt is 0 for an unknown long option, the
 * letter of a known option whose value is missing or unwanted ("--name", "--name=value", or a
 * short one at the end), or an unknown letter, whose cluster ("-xD") may be argv[optind] still,
 * argv[optind - 1] then being the word before it. So: "-x" in shortopt for a letter, unless it
 * is a known option's and the word is a long one; else the word as given. */
const char *cli_bad_option(char **argv, int optind_now, int optopt_now, const char *optstring,
                           char shortopt[3])
{
    const char *word = argv[optind_now - 1];
    int known = optopt_now > 0 && strchr(optstring, optopt_now) != NULL;
    if (optopt_now > 0 && optopt_now < 128 && !(known && strncmp(word, "--", 2) == 0)) {
        shortopt[0] = '-';
        shortopt[1] = (char)optopt_now;
        shortopt[2] = '\0';
        return shortopt;
    }
    return word;
}

/* "--d", a prefix of --data-dir and --demo (getopt_long's optopt 0): 1, their names in list. */
int cli_ambiguous(const char *word, const struct option *o, char *list, size_t size)
{
    size_t len = strcspn(word, "=") - 2, at = 0;
    int n = 0;
    for (list[0] = '\0'; o->name != NULL && strncmp(word, "--", 2) == 0 && len > 0; o++)
        if (strncmp(o->name, word + 2, len) == 0 && at < size)
            at += (size_t)snprintf(list + at, size - at, "%s'--%s'", n++ ? ", " : "", o->name);
    return n > 1;
}

/* A flag's value is taken literally, as the shell passed it: a '#' or ';' is part of it (no
 * comment on a command line). Refused, naming the flag: an empty value (--data-dir '' would
 * otherwise fall to a setting's own check or, for --auth-file, silently mean "no tokens") and a
 * control character (a newline pasted into ExecStart=, which no path, address or level holds).
 * Returns 0, or -1 with "vigild: --flag: reason" on stderr (cli_error). */
int cli_flag_value_check(const char *flag, const char *v)
{
    if (*v == '\0') {
        cli_error(0, "%s: empty value", flag);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            if (*p == '\n' || *p == '\r')
                cli_error(0, "%s: the value has a line break", flag);
            else
                cli_error(0, "%s: the value has a control character (0x%02x)", flag, *p);
            return -1;
        }
    return 0;
}
