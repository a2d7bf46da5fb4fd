// Prints llama.cpp's ggml type table: one line per id, "id name blck_size type_size".
// Built against the peer's libggml-base by scripts/make-type-golden.sh; the output is testdata/ggml-types.txt.
#include <stdio.h>
#include "ggml.h"
int main(void) {
    for (int i = 0; i < GGML_TYPE_COUNT; i++) {
        printf("%d %s %lld %zu\n", i, ggml_type_name((enum ggml_type) i),
               (long long) ggml_blck_size((enum ggml_type) i), ggml_type_size((enum ggml_type) i));
    }
    return 0;
}
