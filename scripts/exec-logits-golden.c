// Logits of llama.cpp for a fixed token sequence: the golden of tests/exec_llama.rs.
// Built and run by scripts/make-exec-goldens.sh against the no-AMX peer build (libllama).
// usage: exec-logits-golden MODEL OUT.f32 TOKEN...
//        exec-logits-golden --ctx N_CTX MODEL OUT.f32 TOKEN...   (a context of N_CTX, default
//        max(64, the token count); phi3's LongRoPE factors depend on it)
//        exec-logits-golden --greedy MODEL N PROMPT   (prints the prompt's ids, then N greedy ids,
//        as llama-simple generates them: tokenize with special tokens, argmax each step)
// Writes n_tokens * n_vocab little-endian f32 (every position's logits), one decode of the
// whole sequence, 1 thread, llama.cpp's default context settings (f16 KV cache, flash attention auto).
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int greedy(const char * path, int n_gen, const char * prompt) {
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model * model = llama_model_load_from_file(path, mp);
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    llama_token toks[512];
    int n = llama_tokenize(vocab, prompt, (int) strlen(prompt), toks, 512, true, true);
    if (n <= 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n + n_gen;
    cp.n_batch = cp.n_ctx;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    printf("prompt");
    for (int i = 0; i < n; i++) printf(" %d", toks[i]);
    printf("\ngen");
    struct llama_batch b = llama_batch_get_one(toks, n);
    llama_token cur;
    for (int i = 0; i < n_gen; i++) {
        if (llama_decode(ctx, b) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
        const float * l = llama_get_logits_ith(ctx, -1);
        int nv = llama_vocab_n_tokens(vocab), best = 0;
        for (int j = 1; j < nv; j++) if (l[j] > l[best]) best = j;
        cur = best;
        printf(" %d", cur);
        if (llama_vocab_is_eog(vocab, cur)) break;
        b = llama_batch_get_one(&cur, 1);
    }
    printf("\n");
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

int main(int argc, char ** argv) {
    if (argc == 5 && strcmp(argv[1], "--greedy") == 0) return greedy(argv[2], atoi(argv[3]), argv[4]);
    int n_ctx = 0;
    if (argc > 3 && strcmp(argv[1], "--ctx") == 0) {
        n_ctx = atoi(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc < 4) { fprintf(stderr, "usage: %s [--ctx N] MODEL OUT TOKEN...\n", argv[0]); return 2; }
    int n = argc - 3;
    llama_token * toks = malloc(sizeof(llama_token) * n);
    for (int i = 0; i < n; i++) toks[i] = atoi(argv[3 + i]);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx > n ? n_ctx : n < 64 ? 64 : n;
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
    struct llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = toks[i]; b.pos[i] = i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
    }
    b.n_tokens = n;
    if (llama_decode(ctx, b) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    int nv = llama_vocab_n_tokens(vocab);
    FILE * f = fopen(argv[2], "wb");
    for (int i = 0; i < n; i++) fwrite(llama_get_logits_ith(ctx, i), sizeof(float), nv, f);
    fclose(f);
    fprintf(stderr, "wrote %d x %d logits\n", n, nv);
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
