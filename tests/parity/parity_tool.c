/* tests/parity/parity_tool.c: the C side of the PyTorch parity test (test_parity.py).
 *
 * Reads and writes plain files so the Python side can drive vigil's model/ through its public
 * interface only:
 *   parity_tool create I O L H SEED OUT.safetensors
 *       a fresh model with non-trivial standardisation, exported
 *   parity_tool forward IN.safetensors SEQ.f32 T OUT.f32 [BATCH]
 *       imports a model, runs the incremental step over T raw rows of SEQ.f32 ([T, I] float32)
 *       and writes the T predictions ([T, O]); with BATCH > 1 it runs BATCH copies of the
 *       sequence through model_step_batch instead and checks they agree with each other
 *   parity_tool train IN.safetensors WIN.f32 STEPS NB T LR CLIP HUBER OUT.safetensors LOSS.f32
 *       imports a model, takes STEPS Adam steps on consecutive minibatches of NB windows
 *       ([STEPS, NB, T + 1, I] raw in WIN.f32), exports the result and the per-step losses
 *   parity_tool load FILE
 *       imports FILE as safetensors (or a vigil checkpoint if it starts with "VGLM") and
 *       exits 0, or prints the error and exits 2
 * Exit status: 0 success, 1 usage or I/O trouble, 2 a model/ error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h> /* openblas_set_num_threads */
#undef I           /* complex.h's imaginary unit (via cblas.h); I is the input count here */

#include "err.h"
#include "model.h"

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int write_file(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(b, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

static int export_to(const model_t *m, const char *path)
{
    size_t cap = model_safetensors_size(m), len;
    void *b = malloc(cap);
    if (!b || model_safetensors_export(m, b, cap, &len) < 0 || write_file(path, b, len) < 0) {
        free(b);
        return -1;
    }
    free(b);
    return 0;
}

static int import_from(model_t **m, const char *path)
{
    size_t len;
    void *b = read_file(path, &len);
    if (!b) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    int rc = len >= 4 && memcmp(b, "VGLM", 4) == 0 ? model_checkpoint_load(m, b, len)
                                                   : model_safetensors_import(m, b, len);
    free(b);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", path, err_str(rc));
        return 2;
    }
    return 0;
}

static int cmd_create(char **a)
{
    struct model_config cfg = {atoi(a[0]), atoi(a[1]), atoi(a[2]), atoi(a[3]),
                               strtoull(a[4], NULL, 10)};
    model_t *m;
    if (model_create(&m, &cfg) < 0)
        return 2;
    float mean[MODEL_MAX_INPUTS], scale[MODEL_MAX_INPUTS];
    for (int i = 0; i < cfg.n_inputs; i++) {
        mean[i] = 10.0f * (float)(i % 5) - 17.5f;
        scale[i] = 0.25f + 0.5f * (float)(i % 4);
    }
    model_set_norm(m, mean, scale);
    int rc = export_to(m, a[5]) < 0 ? 1 : 0;
    model_destroy(m);
    return rc;
}

static int cmd_forward(char **a, int batch)
{
    model_t *m;
    int rc = import_from(&m, a[0]);
    if (rc)
        return rc;
    struct model_config cfg;
    model_get_config(m, &cfg);
    const int I = cfg.n_inputs, O = cfg.n_outputs, T = atoi(a[2]);
    size_t len;
    float *seq = read_file(a[1], &len);
    if (!seq || len != sizeof(float) * (size_t)T * I || batch < 1) {
        fprintf(stderr, "bad sequence file or batch\n");
        free(seq);
        model_destroy(m);
        return 1;
    }
    size_t S = model_state_len(m);
    float *states = calloc(S * batch, sizeof(float));
    float *work = malloc(sizeof(float) * model_work_len(m, batch));
    float *pred = malloc(sizeof(float) * (size_t)T * O * batch);
    float *xb = malloc(sizeof(float) * (size_t)I * batch);
    float **ptrs = malloc(sizeof(float *) * batch);
    rc = 0;
    for (int b = 0; b < batch; b++)
        ptrs[b] = states + (size_t)b * S;
    for (int t = 0; t < T && rc == 0; t++) {
        if (batch == 1) {
            rc = model_step(m, pred + (size_t)t * O, states, seq + (size_t)t * I, work) ? 2 : 0;
        } else {
            for (int b = 0; b < batch; b++)
                memcpy(xb + (size_t)b * I, seq + (size_t)t * I, sizeof(float) * I);
            rc = model_step_batch(m, pred + (size_t)t * O * batch, ptrs, xb, batch, work) ? 2 : 0;
            for (int b = 1; b < batch && rc == 0; b++)
                if (memcmp(pred + (size_t)t * O * batch, pred + ((size_t)t * batch + b) * O,
                           sizeof(float) * O) != 0)
                    rc = 3;
            memmove(pred + (size_t)t * O, pred + (size_t)t * O * batch, sizeof(float) * O);
        }
    }
    if (rc == 0 && write_file(a[3], pred, sizeof(float) * (size_t)T * O) < 0)
        rc = 1;
    free(ptrs), free(xb), free(pred), free(work), free(states), free(seq);
    model_destroy(m);
    return rc;
}

static int cmd_train(char **a)
{
    model_t *m;
    int rc = import_from(&m, a[0]);
    if (rc)
        return rc;
    struct model_config mc;
    model_get_config(m, &mc);
    const int steps = atoi(a[2]), nb = atoi(a[3]), T = atoi(a[4]);
    struct model_train_config cfg;
    model_train_config_default(&cfg);
    cfg.window = T;
    cfg.batch = nb;
    cfg.lr = strtof(a[5], NULL);
    cfg.clip_norm = strtof(a[6], NULL);
    cfg.huber_delta = strtof(a[7], NULL);
    size_t len, wl = (size_t)nb * (T + 1) * mc.n_inputs;
    float *win = read_file(a[1], &len);
    model_trainer_t *tr = NULL;
    float *loss = malloc(sizeof(float) * (size_t)(steps > 0 ? steps : 1));
    if (!win || len != sizeof(float) * wl * steps || model_trainer_create(&tr, m, &cfg) < 0) {
        fprintf(stderr, "bad windows file or settings\n");
        rc = 1;
        goto out;
    }
    for (int s = 0; s < steps; s++)
        if (model_trainer_step(tr, win + (size_t)s * wl, nb, &loss[s]) < 0) {
            rc = 2;
            goto out;
        }
    if (export_to(model_trainer_model(tr), a[8]) < 0 ||
        write_file(a[9], loss, sizeof(float) * (size_t)steps) < 0)
        rc = 1;
out:
    model_trainer_destroy(tr);
    free(loss);
    free(win);
    model_destroy(m);
    return rc;
}

int main(int argc, char **argv)
{
    openblas_set_num_threads(1);
    if (argc == 8 && strcmp(argv[1], "create") == 0)
        return cmd_create(argv + 2);
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "forward") == 0)
        return cmd_forward(argv + 2, argc == 7 ? atoi(argv[6]) : 1);
    if (argc == 12 && strcmp(argv[1], "train") == 0)
        return cmd_train(argv + 2);
    if (argc == 3 && strcmp(argv[1], "load") == 0) {
        model_t *m = NULL;
        int rc = import_from(&m, argv[2]);
        model_destroy(m);
        return rc;
    }
    fprintf(stderr, "usage: see the comment at the top of parity_tool.c\n");
    return 1;
}
