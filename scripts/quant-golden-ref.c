// ggml's bytes for the two activation formats that ggml_quantize_chunk does not cover, Q8_K and Q8_1,
// through their exported reference functions, on testdata/quant/inputs.f32 (all cases, one stream):
//   q8_K.ref.bin  quantize_row_q8_K_ref       q8_K.ref.deq  dequantize_row_q8_K of those bytes
//   q8_1.ref.bin  quantize_row_q8_1_ref       (ggml has no Q8_1 to_float)
// Built against the peer's libggml-base by scripts/make-quant-golden-ref.sh; output in testdata/quant_ref/.
// The output buffers are zeroed first: ggml leaves Q8_K's bsums unwritten for an all-zero block.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void quantize_row_q8_K_ref(const float * x, void * y, int64_t k);
void dequantize_row_q8_K(const void * x, float * y, int64_t k);
void quantize_row_q8_1_ref(const float * x, void * y, int64_t k);

#define N (4 * 4 * 512)

static void put(const char * dir, const char * name, const void * p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE * f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

int main(int argc, char ** argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s inputs.f32 outdir\n", argv[0]); return 2; }
    static float x[N], y[N];
    FILE * f = fopen(argv[1], "rb");
    if (!f || fread(x, sizeof(float), N, f) != N) { perror(argv[1]); return 1; }
    fclose(f);
    static uint8_t q[N / 256 * 292];
    memset(q, 0, sizeof q);
    quantize_row_q8_K_ref(x, q, N);
    put(argv[2], "q8_K.ref.bin", q, N / 256 * 292);
    dequantize_row_q8_K(q, y, N);
    put(argv[2], "q8_K.ref.deq", y, sizeof y);
    memset(q, 0, sizeof q);
    quantize_row_q8_1_ref(x, q, N);
    put(argv[2], "q8_1.ref.bin", q, N / 32 * 36);
    return 0;
}
