# Shared by the bench scripts: source it after setting $work (a scratch directory).

# One run of "$@": "WALL_MS CPU_MS" (CPU = user + system, all threads; `time` counts
# it in 10 ms steps, the wall clock is read to the microsecond).
run() {
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f '%U %S' -o "$work/time" "$@" > /dev/null 2>&1
  end=$(date +%s%N)
  awk -v ns="$((end - start))" '{ printf "%.1f %d\n", ns / 1e6, ($1 + $2) * 1000 }' "$work/time"
}

# The median of the numbers on standard input, one per line or space-separated.
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Column K of the "WALL CPU" lines in file F, as its median.
column_median() { cut -d' ' -f"$2" "$1" | median; }

ratio() { awk -v p="$1" -v o="$2" 'BEGIN { printf "%.2f", p / o }'; }

# A TCP port on 127.0.0.1 that was free a moment ago, for peers that cannot take 0.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Writes $work/nginx/nginx.conf for nginx in the foreground with WORKERS workers,
# sendfile on, no access log, every file of its own under $work/nginx, and SERVER
# (the server { } block's insides).
#   usage: nginx_conf WORKERS SERVER
nginx_conf() {
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<CONF
worker_processes $1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 20000; }
http {
  sendfile on;
  tcp_nopush on;
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server {
$2
  }
}
CONF
}
