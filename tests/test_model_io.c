/* tests/test_model_io.c: unit tests of model/'s byte formats: checkpoints, shared weights and
 * safetensors, against truncation and corruption.
 * Part of test_model: tests/test_model.c runs them, in the order of the single file they were
 * moved from; the fixtures shared with the other parts are in tests/test_model_fx.c. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "internal.h"
#include "model.h"
#include "test_model_fx.h"

/* ---- checkpoints and safetensors ---------------------------------------------------------------
 */

static void test_checkpoint(void **unused)
{
    model_t *m = make_normed_model(4, 2, 2, 6, 21), *r = NULL;
    size_t cap = model_checkpoint_size(m), len;
    unsigned char *buf = malloc(cap), *bad = malloc(cap);
    assert_int_equal(model_checkpoint_save(m, buf, cap - 1, &len), ERR_RANGE);
    assert_int_equal(model_checkpoint_save(m, buf, cap, &len), 0);
    assert_int_equal(len, cap);
    assert_int_equal(model_checkpoint_load(&r, buf, len), 0);
    assert_same_model(m, r);
    model_destroy(r);
    r = NULL;
    assert_ckpt_damage_refused(buf, bad, len, &r);
    assert_null(r);
    assert_int_equal(model_checkpoint_load(&r, NULL, 0), ERR_CORRUPT);
    free(buf), free(bad);
    model_destroy(m);
}

/* model_checkpoint_peek (GET .../model's judgement of a record kept before session 45): the
 * header's shape, for float32 and float16 checkpoints alike; every truncated prefix (each in a
 * buffer of exactly its length, so ASan would see a read past it), a header whose length field
 * was rewritten to a cut buffer's, and each damaged header field are refused, never read past. */
static void test_checkpoint_peek(void **unused)
{
    for (int f16 = 0; f16 < 2; f16++) {
        model_t *m = make_normed_model(4, 3, 2, 6, 23);
        if (f16) {
            model_t *h = NULL;
            assert_int_equal(model_compact(&h, m), 0);
            model_destroy(m);
            m = h;
        }
        size_t cap = model_checkpoint_size(m), len;
        unsigned char *buf = malloc(cap);
        assert_int_equal(model_checkpoint_save(m, buf, cap, &len), 0);
        struct model_config c = {0}, want;
        model_get_config(m, &want);
        assert_int_equal(model_checkpoint_peek(buf, len, &c), 0);
        assert_int_equal(c.n_inputs, 4);
        assert_int_equal(c.n_outputs, 3);
        assert_int_equal(c.n_layers, want.n_layers);
        assert_int_equal(c.n_hidden, want.n_hidden);
        for (size_t l = 0; l < len; l++) {
            unsigned char *t = malloc(l ? l : 1);
            memcpy(t, buf, l);
            assert_int_equal(model_checkpoint_peek(l ? t : NULL, l, &c), ERR_CORRUPT);
            assert_int_equal(model_checkpoint_peek(t, l, &c), ERR_CORRUPT);
            if (l >= 52) { /* the length field says the cut length: the shape disagrees */
                for (int i = 0; i < 8; i++)
                    t[40 + i] = (unsigned char)((uint64_t)l >> (8 * i));
                assert_int_equal(model_checkpoint_peek(t, l, &c), ERR_CORRUPT);
            }
            free(t);
        }
        unsigned char *bad = malloc(len);
        for (size_t i = 0; i < 48; i++) { /* every header byte: refused or the same shape */
            if (i >= 24 && i < 32)
                continue; /* the seed: informational */
            memcpy(bad, buf, len);
            bad[i] ^= 0x40;
            int rc = model_checkpoint_peek(bad, len, &c);
            assert_true(rc == ERR_CORRUPT || (i >= 4 && i < 8 && rc == ERR_INVAL));
        }
        assert_int_equal(model_checkpoint_peek(buf, len, NULL), ERR_CORRUPT);
        free(bad);
        free(buf);
        model_destroy(m);
    }
}

/* model_share: handles to one copy of the weights, freed with the last; a shared model refuses
 * model_set_norm (readers on other threads may step it). Under valgrind or ASan a free too early
 * or a leak would show. */
static void test_share(void **unused)
{
    model_t *m = make_normed_model(4, 2, 1, 6, 41), *ref = NULL;
    assert_int_equal(model_clone(&ref, m), 0);
    model_t *s = model_share(m);
    assert_ptr_equal(s, m);
    float mean[4] = {0}, scale[4] = {1, 1, 1, 1};
    assert_int_equal(model_set_norm(s, mean, scale), ERR_BUSY);
    assert_same_model(ref, s); /* unchanged */
    model_destroy(m);          /* the first owner lets go: s still serves */
    float x[4] = {0.5f, -1.0f, 2.0f, 0.25f}, p1[2], p2[2];
    float *st1 = calloc(model_state_len(s), sizeof(float)),
          *st2 = calloc(model_state_len(s), sizeof(float));
    float *w = calloc(model_work_len(s, 1), sizeof(float));
    assert_int_equal(model_step(s, p1, st1, x, w), 0);
    assert_int_equal(model_step(ref, p2, st2, x, w), 0);
    assert_memory_equal(p1, p2, sizeof p1);
    /* The last handle may be modified again. */
    assert_int_equal(model_set_norm(s, mean, scale), 0);
    free(st1), free(st2), free(w);
    model_destroy(s);
    model_destroy(ref);
}

static void test_safetensors_roundtrip(void **unused)
{
    model_t *m = make_normed_model(5, 3, 3, 7, 31), *r = NULL;
    size_t cap = model_safetensors_size(m), len;
    unsigned char *buf = malloc(cap);
    assert_int_equal(model_safetensors_export(m, buf, cap - 1, &len), ERR_RANGE);
    assert_int_equal(model_safetensors_export(m, buf, cap, &len), 0);
    assert_int_equal(len, cap);
    uint64_t hl;
    memcpy(&hl, buf, 8);
    assert_int_equal(hl % 8, 0);
    assert_non_null(strstr((char *)buf + 8, "\"lstm.weight_ih_l2\""));
    assert_non_null(strstr((char *)buf + 8, "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[3,7]"));
    assert_int_equal(model_safetensors_import(&r, buf, len), 0);
    assert_same_model(m, r);
    model_destroy(r);
    free(buf);
    model_destroy(m);
}

/* Builds a safetensors buffer from a header string and n data bytes (zero floats = 0.0f,
 * except that input_scale would be 0, so tests using it set their own bytes). */
static unsigned char *st_make(const char *hdr, size_t ndata, size_t *len)
{
    size_t hl = strlen(hdr);
    *len = 8 + hl + ndata;
    unsigned char *b = calloc(*len, 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    return b;
}

static void test_safetensors_handmade(void **unused)
{
    /* A minimal valid file: I = 1, H = 1, O = 1, plain nn.LSTM names (no "lstm." prefix), no
     * standardisation tensors (identity). 4+4+16+16+4+4 = 48 bytes of data (zeros). */
    const char *ok =
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[0,16]},"
        "\"weight_hh_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[16,32]},"
        "\"bias_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[32,48]},"
        "\"bias_hh_l0\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]},"
        "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[64,68]},"
        "\"fc.bias\":{\"data_offsets\":[68,72],\"shape\":[1],\"dtype\":\"F32\"},"
        "\"__metadata__\":{\"format\":\"pt\",\"x\":[1,{\"y\":null}]}}";
    size_t len;
    unsigned char *b = st_make(ok, 72, &len);
    model_t *m = NULL;
    assert_int_equal(model_safetensors_import(&m, b, len), 0);
    assert_int_equal(m->cfg.n_hidden, 1);
    assert_true(m->scale[0] == 1.0f && m->mean[0] == 0.0f);
    model_destroy(m);
    m = NULL;
    /* Truncations and every single-byte corruption: error or a valid model, never a crash
     * (ASan/valgrind runs make "never a crash" strict). */
    for (size_t l = 0; l < len; l++) {
        unsigned char *t = malloc(l ? l : 1);
        memcpy(t, b, l);
        assert_int_equal(model_safetensors_import(&m, t, l), ERR_CORRUPT);
        free(t);
    }
    const unsigned char subst[] = {0, '"', '{', '}', '[', ']', ',', ':', '9', 'x', 0xff, '\\'};
    for (size_t i = 0; i < len; i++)
        for (size_t k = 0; k < sizeof subst; k++) {
            unsigned char *t = malloc(len);
            memcpy(t, b, len);
            t[i] = subst[k];
            int rc = model_safetensors_import(&m, t, len);
            assert_true(rc == 0 || rc == ERR_CORRUPT);
            if (rc == 0) {
                model_destroy(m);
                m = NULL;
            }
            free(t);
        }
    free(b);
    /* Specific malformations. */
    const char *bads[] = {
        "{\"weight_ih_l0\":{\"dtype\":\"F16\",\"shape\":[4,1],\"data_offsets\":[0,16]}}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[0,999]}}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,1]}}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[0,16]}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[3,1],\"data_offsets\":[0,12]}}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615,1],"
        "\"data_offsets\":[0,16]}}",
        "[]",
        "",
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]"
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        b = st_make(bads[i], 72, &len);
        assert_int_equal(model_safetensors_import(&m, b, len), ERR_CORRUPT);
        free(b);
    }
    /* A header length beyond the buffer. */
    unsigned char hdr[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    assert_int_equal(model_safetensors_import(&m, hdr, sizeof hdr), ERR_CORRUPT);
    assert_null(m);
}

/* The minimal file of test_safetensors_handmade, its first tensor called `ih` (as written in
 * the JSON), with `extra` spliced in before its metadata; import_why's answer and reason. */
static int st_with(const char *ih, const char *extra, char *why, size_t cap)
{
    char hdr[16384];
    snprintf(hdr, sizeof hdr,
             "{\"%s\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[0,16]},"
             "\"weight_hh_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[16,32]},"
             "\"bias_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[32,48]},"
             "\"bias_hh_l0\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]},"
             "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[64,68]},"
             "\"fc.bias\":{\"data_offsets\":[68,72],\"shape\":[1],\"dtype\":\"F32\"},%s"
             "\"__metadata__\":{\"format\":\"pt\"}}",
             ih, extra);
    size_t len;
    unsigned char *b = st_make(hdr, 72, &len);
    model_t *m = NULL;
    why[0] = '\0';
    int rc = model_safetensors_import_why(&m, b, len, why, cap);
    model_destroy(m);
    free(b);
    return rc;
}

/* Names and shapes the importer once misread (read68c): two names differing only in a non-ASCII
 * escape were one name ("named twice"), a tensor of 5 dimensions made the header "not JSON",
 * tensors past the 128th were dropped unsaid (then "no tensor" for one that was there). */
static void test_safetensors_names(void **unused)
{
    char why[512];
    /* Python's json.dumps writes non-ASCII as \uXXXX: two other tensors, two names. */
    assert_int_equal(st_with("weight_ih_l0",
                             "\"extra\\u00e9\":{\"dtype\":\"F32\",\"shape\":[1],"
                             "\"data_offsets\":[0,4]},\"extra\\u00e8\":{\"dtype\":\"F32\","
                             "\"shape\":[1],\"data_offsets\":[0,4]},",
                             why, sizeof why),
                     0);
    /* The same name twice is still refused, escaped or not (\u0065 is 'e'). */
    assert_int_equal(st_with("weight_ih_l0",
                             "\"extra\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                             "\"\\u0065xtra\":{\"dtype\":\"F32\",\"shape\":[1],"
                             "\"data_offsets\":[0,4]},",
                             why, sizeof why),
                     ERR_CORRUPT);
    assert_string_equal(why, "tensor 'extra': named twice in the header");
    /* An ASCII escape in one of ours reads as the letter ("weight_i\u0068_l0"). */
    assert_int_equal(st_with("weight_i\\u0068_l0", "", why, sizeof why), 0);
    /* Another tensor of 5 dimensions is another tensor. */
    assert_int_equal(st_with("weight_ih_l0",
                             "\"conv\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],"
                             "\"data_offsets\":[0,4]},",
                             why, sizeof why),
                     0);
    /* Past 128 tensors: refused as such, not as "no tensor 'fc.weight'". */
    char many[12000] = "";
    for (int i = 0; i < 130; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "\"x%d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},", i);
    assert_int_equal(st_with("weight_ih_l0", many, why, sizeof why), ERR_CORRUPT);
    assert_non_null(strstr(why, "the header names more than 128 tensors"));
    /* A header longer than vigild reads, that the body holds: not "more than the body's". */
    size_t big = (64u << 20) + 16;
    unsigned char *b = calloc(8 + big, 1);
    assert_non_null(b);
    uint64_t hl = big;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(hl >> (8 * i));
    model_t *m = NULL;
    assert_int_equal(model_safetensors_import_why(&m, b, 8 + big, why, sizeof why), ERR_CORRUPT);
    assert_null(m);
    assert_non_null(strstr(why, "more than the 67108864 vigild reads"));
    free(b);
}

/* A header of a few hundred bytes that names the largest model's shapes (H = 2048, I = 1024,
 * 3 layers: 92 M parameters, 370 MB) over an empty data section is refused before anything
 * of that size is allocated. Before session 26 the importer created (and initialised) the
 * model first and checked the tensors' bytes after: a 383-byte PUT .../model/weights cost
 * 370 MB and seconds of CPU. Measured in a child, whose peak RSS (wait4) starts at ours. */
static void test_safetensors_huge_shape_small_body(void **unused)
{
    char hdr[1024];
    snprintf(hdr, sizeof hdr,
             "{\"lstm.weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[8192,1024],"
             "\"data_offsets\":[0,0]},"
             "\"lstm.weight_hh_l0\":{\"dtype\":\"F32\",\"shape\":[8192,2048],"
             "\"data_offsets\":[0,0]},"
             "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[1,2048],\"data_offsets\":[0,0]},"
             "\"lstm.weight_ih_l1\":{\"dtype\":\"F32\",\"shape\":[8192,2048],"
             "\"data_offsets\":[0,0]},"
             "\"lstm.weight_ih_l2\":{\"dtype\":\"F32\",\"shape\":[8192,2048],"
             "\"data_offsets\":[0,0]}}");
    size_t len;
    unsigned char *b = st_make(hdr, 0, &len);
    assert_true(len < 400);
    struct rusage self, child;
    assert_int_equal(getrusage(RUSAGE_SELF, &self), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        model_t *m = NULL;
        _exit(model_safetensors_import(&m, b, len) == ERR_CORRUPT && m == NULL ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(wait4(pid, &st, 0, &child), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* ru_maxrss in KiB: the child may grow by less than 64 MiB (the model would be 370 MB). */
    assert_true(child.ru_maxrss < self.ru_maxrss + 64 * 1024);
    free(b);
}

/* The half-byte-table CRC-32 model__crc32 was before zlib's (session 42, task startup): the
 * reference every saved checkpoint and detector was written with. */
static uint32_t crc32_ref(uint32_t crc, const unsigned char *p, size_t n)
{
    static const uint32_t tab[16] = {0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
                                     0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
                                     0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
                                     0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ tab[crc & 15];
        crc = (crc >> 4) ^ tab[crc & 15];
    }
    return ~crc;
}

/* model__crc32 answers the reference's value for every length (zlib's steps and tails), at
 * every alignment, continued in pieces too, so what older vigilds saved still loads. */
static void test_crc32_reference(void **unused)
{
    (void)unused;
    assert_int_equal(model__crc32(0, "123456789", 9), 0xcbf43926u); /* the CRC-32 check value */
    assert_int_equal(model__crc32(0x1234u, NULL, 0), 0x1234u);      /* nothing added: unchanged */
    enum { N = 70000 };
    unsigned char *b = malloc(N);
    assert_non_null(b);
    uint32_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (unsigned char)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n < 300; n++)
            assert_int_equal(model__crc32(7, b + off, n), crc32_ref(7, b + off, n));
    assert_int_equal(model__crc32(0, b, N), crc32_ref(0, b, N));
    uint32_t c = model__crc32(0, b, 1000);
    c = model__crc32(c, b + 1000, 3);
    c = model__crc32(c, b + 1003, N - 1003);
    assert_int_equal(c, crc32_ref(0, b, N));
    free(b);
}

const struct CMUnitTest model_io_tests[] = {
    cmocka_unit_test(test_crc32_reference),
    cmocka_unit_test(test_checkpoint),
    cmocka_unit_test(test_checkpoint_peek),
    cmocka_unit_test(test_share),
    cmocka_unit_test(test_safetensors_roundtrip),
    cmocka_unit_test(test_safetensors_handmade),
    cmocka_unit_test(test_safetensors_names),
    cmocka_unit_test(test_safetensors_huge_shape_small_body),
};
const size_t model_io_count = sizeof model_io_tests / sizeof model_io_tests[0];
