// llama.cpp's built-in chat formatting (llama_chat_apply_template, no Jinja): the golden of
// tests/chat_template.rs. Built and run by scripts/make-chat-goldens.py against libllama.
// usage: chat-template-golden --list
//          prints llama_chat_builtin_templates(), one name a line
//        chat-template-golden TMPL_FILE ADD_ASS ROLE CONTENT [ROLE CONTENT]...
//          TMPL_FILE holds a template name or a Jinja source (detected by llama.cpp's heuristics);
//          prints the formatted conversation, exactly its bytes; exit 3 if llama.cpp does not
//          support the template.
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char * slurp(const char * path) {
    FILE * f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char * b = malloc(n + 1);
    if (fread(b, 1, n, f) != (size_t) n) { perror(path); exit(2); }
    b[n] = 0;
    fclose(f);
    return b;
}

int main(int argc, char ** argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        const char * names[256];
        int n = llama_chat_builtin_templates(names, 256);
        for (int i = 0; i < n && i < 256; i++) printf("%s\n", names[i]);
        return 0;
    }
    if (argc < 3 || (argc - 3) % 2 != 0) {
        fprintf(stderr, "usage: %s TMPL_FILE ADD_ASS ROLE CONTENT...\n", argv[0]);
        return 2;
    }
    char * tmpl = slurp(argv[1]);
    int add_ass = atoi(argv[2]);
    int n_msg = (argc - 3) / 2;
    struct llama_chat_message * chat = calloc(n_msg > 0 ? n_msg : 1, sizeof(*chat));
    size_t total = 0;
    for (int i = 0; i < n_msg; i++) {
        chat[i].role = argv[3 + 2 * i];
        chat[i].content = argv[4 + 2 * i];
        total += strlen(chat[i].role) + strlen(chat[i].content);
    }
    int32_t len = (int32_t) (2 * total + 4096);
    char * buf = malloc(len);
    int32_t res = llama_chat_apply_template(tmpl, chat, n_msg, add_ass != 0, buf, len);
    if (res < 0) return 3;
    if (res > len) {
        len = res;
        buf = realloc(buf, len);
        res = llama_chat_apply_template(tmpl, chat, n_msg, add_ass != 0, buf, len);
    }
    fwrite(buf, 1, res, stdout);
    return 0;
}
