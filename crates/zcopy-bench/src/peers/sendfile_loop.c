/* The baseline for `zcopy send`: a bare sendfile(2) loop in C, sending FILE to
 * HOST PORT over TCP, as small as such a client can be: a peer of `zcopy bench
 * --peers`, which compiles it with cc when a compiler is installed. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s FILE HOST PORT\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(argv[1]);
        return 1;
    }
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    inet_pton(AF_INET, argv[2], &addr.sin_addr);
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("connect");
        return 1;
    }
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(sock, fd, &off, st.st_size - off);
        if (n <= 0) {
            perror("sendfile");
            return 1;
        }
    }
    close(sock);
    return 0;
}
