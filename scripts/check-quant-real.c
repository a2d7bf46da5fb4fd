// ggml's side of scripts/check-quant-real.sh: for the tensors of a GGUF whose name starts with one of
// the given prefixes, decode them with ggml's to_float and re-quantize the f32 rows to several types
// with ggml_quantize_chunk, plain and with a fixed synthetic importance matrix; prints
// "tensor type plain|imatrix fnv" (fnv-1a of the bytes).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml.h"
#include "gguf.h"

static uint64_t fnv(const uint8_t * p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
    return h;
}

int main(int argc, char ** argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s model.gguf prefix...\n", argv[0]); return 2; }
    struct ggml_context * meta = NULL;
    struct gguf_init_params ip = { .no_alloc = true, .ctx = &meta };
    struct gguf_context * g = gguf_init_from_file(argv[1], ip);
    if (!g) return 1;
    FILE * f = fopen(argv[1], "rb");
    const enum ggml_type types[] = { GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
        GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_F16, GGML_TYPE_BF16 };
    for (int64_t t = 0; t < gguf_get_n_tensors(g); t++) {
        const char * name = gguf_get_tensor_name(g, t);
        int want = 0;
        for (int a = 2; a < argc; a++) if (!strncmp(name, argv[a], strlen(argv[a]))) want = 1;
        if (!want) continue;
        struct ggml_tensor * tt = ggml_get_tensor(meta, name);
        int64_t ne0 = tt->ne[0], n = ggml_nelements(tt), nrows = n / ne0;
        size_t sz = gguf_get_tensor_size(g, t);
        uint8_t * raw = malloc(sz);
        fseek(f, (long)(gguf_get_data_offset(g) + gguf_get_tensor_offset(g, t)), SEEK_SET);
        if (fread(raw, 1, sz, f) != sz) return 1;
        float * x = malloc(n * sizeof(float));
        enum ggml_type st = gguf_get_tensor_type(g, t);
        if (st == GGML_TYPE_F32) memcpy(x, raw, n * 4); else ggml_get_type_traits(st)->to_float(raw, x, n);
        float * im = malloc(ne0 * sizeof(float));
        for (int64_t j = 0; j < ne0; j++) im[j] = 0.1f + (float)((j * 7919) % 101) / 50.0f;
        uint8_t * q = malloc(n * 4);
        for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
            if (ne0 % ggml_blck_size(types[k])) continue;
            for (int v = 0; v < 2; v++) {
                size_t out = ggml_quantize_chunk(types[k], x, q, 0, nrows, ne0, v ? im : NULL);
                printf("%s %s %s %016llx\n", name, ggml_type_name(types[k]), v ? "imatrix" : "plain",
                       (unsigned long long) fnv(q, out));
            }
        }
        free(raw); free(x); free(im); free(q);
    }
    return 0;
}
