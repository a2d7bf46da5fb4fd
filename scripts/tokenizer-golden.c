// llama.cpp's tokenizer on many strings with one load of the vocabulary: the engine of
// scripts/make-zoo-tokenizer-goldens.py (llama-tokenize loads the vocabulary again for every string,
// 2-5 s each on the zoo's large vocabularies). It calls llama_tokenize exactly as llama-tokenize does
// (add_special = the model's add_bos && !--no-bos, parse_special = !--no-parse-special); the script
// checks a sample of its answers against llama-tokenize itself.
// usage: tokenizer-golden MODEL STRINGS
//   STRINGS holds records "LEN\n" followed by LEN bytes of text.
//   prints "add_bos 0|1", then per record three lines of space-separated ids:
//     default (add_special = add_bos, parse_special), no_parse_special (add_special = add_bos),
//     raw (add_special = false, parse_special = false: test-tokenizer-0's setting).
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_ids(const struct llama_vocab * vocab, const char * text, int len, int add_special,
                      int parse_special) {
    int cap = len + 16;
    llama_token * ids = malloc(sizeof(llama_token) * cap);
    int n = llama_tokenize(vocab, text, len, ids, cap, add_special, parse_special);
    if (n < 0) {
        cap = -n;
        ids = realloc(ids, sizeof(llama_token) * cap);
        n = llama_tokenize(vocab, text, len, ids, cap, add_special, parse_special);
    }
    if (n < 0) {
        fprintf(stderr, "llama_tokenize failed\n");
        exit(1);
    }
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    free(ids);
}

static void quiet(enum ggml_log_level level, const char * text, void * user) {
    (void) user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char ** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL STRINGS\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "%s: cannot load\n", argv[1]);
        return 1;
    }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    int add_bos = llama_vocab_get_add_bos(vocab);
    printf("add_bos %d\n", add_bos);

    FILE * f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 2;
    }
    int len;
    while (fscanf(f, "%d", &len) == 1) {
        if (fgetc(f) != '\n' || len < 0) {
            fprintf(stderr, "bad record\n");
            return 2;
        }
        char * text = malloc(len + 1);
        if (fread(text, 1, len, f) != (size_t) len) {
            fprintf(stderr, "short record\n");
            return 2;
        }
        text[len] = 0;
        print_ids(vocab, text, len, add_bos, 1);
        print_ids(vocab, text, len, add_bos, 0);
        print_ids(vocab, text, len, 0, 0);
        free(text);
    }
    fclose(f);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
