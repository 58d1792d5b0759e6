/* The ceiling for `zcopy serve`: the least an HTTP/1.1 keep-alive server can do
 * per request. Every request (whatever its path) gets FILE: a head built once at
 * start (no Date, no parsing beyond the blank line), sent with MSG_MORE, then the
 * body with sendfile(2). One epoll loop per thread, all accepting from one socket
 * (EPOLLEXCLUSIVE), as zcopy does. Used by bench-serve.sh.
 *   usage: sendfile-server FILE PORT [THREADS]   (binds 127.0.0.1) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct conn {
    int fd;
    char in[8192];
    size_t have;
    size_t head_sent; /* of head_len; then the body from off */
    off_t off;
    int busy; /* a response is in flight */
};

static int file_fd, listen_fd;
static off_t file_size;
static char head[256];
static size_t head_len;

/* Sends what it can of the response; 1 when done, 0 on EAGAIN, -1 on error. */
static int push(struct conn *c) {
    while (c->head_sent < head_len) {
        ssize_t n = send(c->fd, head + c->head_sent, head_len - c->head_sent, MSG_MORE | MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        c->head_sent += n;
    }
    while (c->off < file_size) {
        ssize_t n = sendfile(c->fd, file_fd, &c->off, file_size - c->off);
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        if (n == 0) return -1;
    }
    return 1;
}

static void *loop(void *arg) {
    (void)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            for (;;) {
                if (c->busy) {
                    int r = push(c);
                    if (r < 0) goto drop;
                    if (r == 0) {
                        struct epoll_event cev = {.events = EPOLLOUT, .data.ptr = c};
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
                        break;
                    }
                    if (events[i].events & EPOLLOUT) {
                        struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
                        events[i].events = EPOLLIN;
                    }
                    c->busy = 0;
                }
                char *end = memmem(c->in, c->have, "\r\n\r\n", 4);
                if (end) {
                    size_t used = end + 4 - c->in;
                    memmove(c->in, c->in + used, c->have - used);
                    c->have -= used;
                    c->busy = 1;
                    c->head_sent = 0;
                    c->off = 0;
                    continue;
                }
                if (c->have == sizeof c->in) goto drop;
                ssize_t r = read(c->fd, c->in + c->have, sizeof c->in - c->have);
                if (r == 0 || (r < 0 && errno != EAGAIN)) goto drop;
                if (r < 0) break;
                c->have += r;
            }
            continue;
        drop:
            close(c->fd);
            free(c);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s FILE PORT [THREADS]\n", argv[0]);
        return 2;
    }
    struct stat st;
    file_fd = open(argv[1], O_RDONLY);
    if (file_fd < 0 || fstat(file_fd, &st) < 0) {
        perror(argv[1]);
        return 1;
    }
    file_size = st.st_size;
    head_len = snprintf(head, sizeof head,
                        "HTTP/1.1 200 OK\r\nServer: c\r\nContent-Type: application/octet-stream\r\n"
                        "Content-Length: %lld\r\n\r\n",
                        (long long)file_size);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listen_fd, 4096) < 0) {
        perror("listen");
        return 1;
    }
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    pthread_t t;
    for (int i = 1; i < threads; i++) pthread_create(&t, NULL, loop, NULL);
    loop(NULL);
}
