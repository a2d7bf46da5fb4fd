// llama.cpp's tokenizer on many strings with one load of the vocabulary: the engine of
// scripts/make-zoo-tokenizer-goldens.py (llama-tokenize loads the vocabulary again for every string,
// 2-5 s each on the zoo's large vocabularies). It calls llama_tokenize exactly as llama-tokenize does
// (add_special = the model's add_bos && !--no-bos, parse_special = !--no-parse-special); the script
// checks a sample of its answers against llama-tokenize itself.
// usage: tokenizer-golden MODEL STRINGS
//   STRINGS holds records "LEN\n" followed by LEN bytes of text.
//   prints "add_bos 0|1", then per record three lines of space-separated ids:
//     default (add_special = add_bos, parse_special), no_parse_special (add_special = add_bos),
//     raw (add_special = false, parse_special = false: test-tokenizer-0's setting);
//   then the default ids' pieces (llama_token_to_piece, special = true) as space-separated hex ("-"
//   for an empty piece), llama_detokenize of the raw ids (remove_special and unparse_special off)
//   and of the default ids (both on), each as hex ("-" when empty).
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static llama_token * tokenize(const struct llama_vocab * vocab, const char * text, int len,
                              int add_special, int parse_special, int * n_out) {
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
    *n_out = n;
    return ids;
}

static void print_ids(const llama_token * ids, int n) {
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
}

static void print_hex(const char * b, int n) {
    if (n == 0) printf("-");
    for (int i = 0; i < n; i++) printf("%02x", (unsigned char) b[i]);
}

static void print_detok(const struct llama_vocab * vocab, const llama_token * ids, int n,
                        int remove_special, int unparse_special) {
    int cap = 64 + 64 * n;
    char * buf = malloc(cap);
    int m = llama_detokenize(vocab, ids, n, buf, cap, remove_special, unparse_special);
    if (m < 0) {
        fprintf(stderr, "llama_detokenize failed\n");
        exit(1);
    }
    print_hex(buf, m);
    printf("\n");
    free(buf);
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
        int n_def, n_nps, n_raw;
        llama_token * def = tokenize(vocab, text, len, add_bos, 1, &n_def);
        llama_token * nps = tokenize(vocab, text, len, add_bos, 0, &n_nps);
        llama_token * raw = tokenize(vocab, text, len, 0, 0, &n_raw);
        print_ids(def, n_def);
        print_ids(nps, n_nps);
        print_ids(raw, n_raw);
        // The pieces of the default ids as llama-tokenize prints them (special = true).
        for (int i = 0; i < n_def; i++) {
            char piece[1024];
            int m = llama_token_to_piece(vocab, def[i], piece, sizeof(piece), 0, 1);
            if (m < 0) {
                fprintf(stderr, "piece of %d too long\n", def[i]);
                return 1;
            }
            if (i) printf(" ");
            print_hex(piece, m);
        }
        printf("\n");
        print_detok(vocab, raw, n_raw, 0, 0);
        print_detok(vocab, def, n_def, 1, 1);
        free(def);
        free(nps);
        free(raw);
        free(text);
    }
    fclose(f);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
