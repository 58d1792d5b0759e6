#!/usr/bin/env bash
# Runs the peers' own test suites twice, once on the real tool (the control) and
# once on zcopy under the tool's name, and prints per suite
#   SUITE control: N passed, N failed, N skipped
#   SUITE zcopy: N passed, N failed, N skipped
# with the failing tests' names. It reports, it does not gate: the exit status is
# 0 unless the harness itself breaks (2). A suite whose source cannot be fetched
# is printed as not run, never counted as passed.
#
# Suites:
#   coreutils-cp   GNU coreutils 9.1 tests/cp/* (Debian source, bookworm), on src/cp
#   coreutils-sum  its md5sum/sha*sum tests (tests/misc), on src/md5sum, src/sha*sum
#   xxhsum         xxHash 0.8.3 (Debian source, trixie): the Makefile's check and
#                  test-xxhsum-c lines and tests/cli-*.sh, filename-escape.sh, one
#                  test per command that runs ./xxhsum
#   b3sum          b3sum 1.8.2 (crates.io) tests/cli_tests.rs
#
# Environment:
#   PEER_SUITES="coreutils-cp xxhsum"  run only these suites
#   PEER_SUITES_CACHE=DIR   sources and builds (default /var/cache/zcopy-peer-suites
#                           as root, so the coreutils tests that drop to
#                           NON_ROOT_USERNAME can reach it; else
#                           ${XDG_CACHE_HOME:-~/.cache}/zcopy-peer-suites)
#   PEER_SUITES_TIMEOUT=60  seconds one test may take; a test over it is a failure
#   ZCOPY=PATH              the zcopy binary (default the newer of target/release
#                           and target/debug, built if neither exists)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
repo=$PWD
here=$repo/scripts/peer-suites

suites=${PEER_SUITES:-coreutils-cp coreutils-sum xxhsum b3sum}
export PEER_SUITES_TIMEOUT=${PEER_SUITES_TIMEOUT:-60}
if [ "$(id -u)" = 0 ]; then
  cache=${PEER_SUITES_CACHE:-/var/cache/zcopy-peer-suites}
else
  cache=${PEER_SUITES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zcopy-peer-suites}
fi
jobs=$(nproc)
coreutils_version=9.1-1
xxhash_version=0.8.3-2
b3sum_version=1.8.2
# Names under which zcopy is tested, each a link to it.
tool_names=(cp xxhsum b3sum sha256sum md5sum sha1sum sha224sum sha384sum sha512sum)
sum_progs=(md5sum sha1sum sha224sum sha256sum sha384sum sha512sum)

die() { echo "peer-suites: $*" >&2; exit 2; }
log() { echo "peer-suites: $*" >&2; }

summary=()
# report SUITE WHO PASSED FAILED SKIPPED [FAILED_NAME...]
report() {
  local suite=$1 who=$2 p=$3 f=$4 s=$5
  shift 5
  local line="$suite $who: $p passed, $f failed, $s skipped"
  echo "$line"
  local name
  for name in "$@"; do echo "  FAIL $name"; done
  summary+=("$line")
}
not_run() {
  local line="$1: not run: $2"
  echo "$line"
  summary+=("$line")
}

mkdir -p "$cache" || die "cannot create $cache"
chmod 755 "$cache"
started=$SECONDS

# --- zcopy under the tools' names ----------------------------------------------
zcopy=${ZCOPY:-}
if [ -z "$zcopy" ]; then
  for candidate in target/release/zcopy target/debug/zcopy; do
    if [ -x "$candidate" ] && { [ -z "$zcopy" ] || [ "$candidate" -nt "$zcopy" ]; }; then
      zcopy=$candidate
    fi
  done
  if [ -z "$zcopy" ]; then
    log "building zcopy (cargo build -p zcopy-cli)"
    cargo build -q -p zcopy-cli || die "cargo build -p zcopy-cli failed"
    zcopy=target/debug/zcopy
  fi
fi
[ -x "$zcopy" ] || die "no zcopy binary at $zcopy"
# A copy, not a link into the work tree: the coreutils tests that run as
# NON_ROOT_USERNAME must reach it wherever the repository lives.
links=$cache/links
rm -rf "$links"
mkdir -p "$links"
cp "$zcopy" "$links/zcopy"
for name in "${tool_names[@]}"; do ln -s zcopy "$links/$name"; done
chmod -R a+rX "$links"
echo "zcopy under test: $zcopy ($("$links/zcopy" --version 2>&1 | head -n 1))"

# --- fetching -------------------------------------------------------------------
# apt with a private configuration in the cache: deb-src stanzas of its own, its
# own lists, so the machine's apt setup is read for nothing and changed in nothing.
aptdir=$cache/apt
apt_private() {
  local opts=(-o "Dir::Etc::SourceList=$aptdir/sources.list"
              -o "Dir::Etc::SourceParts=$aptdir/sources.list.d"
              -o "Dir::State::Lists=$aptdir/lists"
              -o "Dir::Cache=$aptdir/cache")
  # Root's apt drops to _apt for downloads, which cannot write into the cache.
  [ "$(id -u)" = 0 ] && opts+=(-o "APT::Sandbox::User=root")
  apt-get -q "${opts[@]}" "$@"
}
apt_ready=
apt_update() {
  [ -n "$apt_ready" ] && return "$apt_ready"
  mkdir -p "$aptdir/lists/partial" "$aptdir/sources.list.d" "$aptdir/cache/archives/partial"
  : > "$aptdir/sources.list"
  cat > "$aptdir/sources.list.d/peer-suites.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  if apt_private update >"$aptdir/update.log" 2>&1; then apt_ready=0; else apt_ready=1; fi
  return "$apt_ready"
}
# debian_source PACKAGE VERSION DIR: the unpacked source package in $cache/src/DIR.
debian_source() {
  local pkg=$1 version=$2 dir=$cache/src/$3
  [ -e "$dir/.peer-suites-unpacked" ] && return 0
  if ! command -v apt-get >/dev/null || ! command -v dpkg-source >/dev/null; then
    log "apt-get and dpkg-source (dpkg-dev) are needed to fetch $pkg"
    return 1
  fi
  apt_update || { log "apt-get update failed: $aptdir/update.log"; return 1; }
  mkdir -p "$cache/src"
  rm -rf "$dir"
  (cd "$cache/src" && apt_private source "$pkg=$version") >"$cache/src/$pkg.log" 2>&1 || {
    log "apt-get source $pkg=$version failed: $cache/src/$pkg.log"; return 1; }
  [ -d "$dir" ] || { log "apt-get source $pkg made no $dir"; return 1; }
  touch "$dir/.peer-suites-unpacked"
}

# --- coreutils --------------------------------------------------------------------
cu=$cache/src/coreutils-9.1
coreutils_ready=
# What fetching and building coreutils need, and what its tests need to run
# rather than skip (acl.sh: getfacl and a build with libacl; capability.sh:
# setcap and a build with libcap): command-or-file:package pairs, installed when
# missing and we may (root, apt-get), as scripts/test.sh does for its peers.
coreutils_wanted=(dpkg-source:dpkg-dev getfacl:acl setcap:libcap2-bin
                  /usr/include/acl/libacl.h:libacl1-dev
                  /usr/include/sys/capability.h:libcap-dev)
coreutils_install() {
  local pair item missing=()
  for pair in "${coreutils_wanted[@]}"; do
    item=${pair%%:*}
    if [ "${item#/}" != "$item" ]; then [ -e "$item" ] && continue
    else command -v "$item" >/dev/null 2>&1 && continue; fi
    missing+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"; } >"$cache/install.log" 2>&1 \
      || log "installing them failed: $cache/install.log"
  else
    log "not installing ${missing[*]} (needs root and apt-get): the tests that need them will skip"
  fi
}
coreutils_ready=
coreutils_build() {
  [ -n "$coreutils_ready" ] && return "$coreutils_ready"
  coreutils_ready=1
  coreutils_install
  debian_source coreutils "$coreutils_version" coreutils-9.1 || return 1
  # The stamp says what the build was made with; a build without ACL or
  # capability support is made again once their headers are there.
  local recipe="configure --quiet --disable-nls"
  [ -e /usr/include/acl/libacl.h ] && recipe+=" acl"
  [ -e /usr/include/sys/capability.h ] && recipe+=" libcap"
  if [ "$(cat "$cu/.peer-suites-built" 2>/dev/null)" != "$recipe" ]; then
    log "building coreutils 9.1 in $cu ($recipe; about 3 minutes on 2 cores)"
    # configure refuses root unless told; the build is only ever run from here.
    (cd "$cu" && FORCE_UNSAFE_CONFIGURE=1 nice -n 10 ./configure --quiet --disable-nls \
       && nice -n 10 make -j"$jobs") >"$cache/coreutils-build.log" 2>&1 || {
      log "coreutils build failed: $cache/coreutils-build.log"; return 1; }
    local prog
    for prog in cp "${sum_progs[@]}"; do ln -f "$cu/src/$prog" "$cu/src/$prog.built"; done
    echo "$recipe" > "$cu/.peer-suites-built"
  fi
  chmod -R a+rX "$cu"
  coreutils_ready=0
}
# The tests put $abs_top_builddir/src first on PATH, so the tool under test is
# whatever src/PROG is for the run: a copy of /usr/bin/PROG, or a hard link to
# zcopy's copy in the cache (a debug build is over 100 MB), under the name PROG.
# It takes the built program's mtime, so that make check neither relinks it (-o
# does not reach the recursive makes) nor regenerates its man page.
coreutils_point() {
  local dir=$1 prog
  for prog in cp "${sum_progs[@]}"; do
    rm -f "$cu/src/$prog"
    if [ "$dir" = "$links" ]; then
      ln "$links/zcopy" "$cu/src/$prog" 2>/dev/null || cp "$links/zcopy" "$cu/src/$prog"
    else
      cp "$dir/$prog" "$cu/src/$prog"
    fi
    touch -r "$cu/src/$prog.built" "$cu/src/$prog"
  done
}
coreutils_restore() {
  local prog
  for prog in cp "${sum_progs[@]}"; do ln -f "$cu/src/$prog.built" "$cu/src/$prog"; done
}
# coreutils_run SUITE WHO TOOLDIR TEST...
coreutils_run() {
  local suite=$1 who=$2 tooldir=$3
  shift 3
  local t
  for t in "$@"; do rm -f "$cu/${t%.*}.log" "$cu/${t%.*}.trs"; done
  coreutils_point "$tooldir"
  local path=$PATH
  [ "$who" = zcopy ] && path=$links:$PATH
  (cd "$cu" && PATH=$path RUN_EXPENSIVE_TESTS=yes RUN_VERY_EXPENSIVE_TESTS=yes NON_ROOT_USERNAME=nobody \
     make -k -j"$jobs" check SUBDIRS=. VERBOSE=no TESTS="$*" \
       SH_LOG_COMPILER="$here/timeout-test \$(SHELL)" \
       PL_LOG_COMPILER="$here/timeout-test \$(TESTSUITE_PERL) \$(TESTSUITE_PERL_OPTIONS)") \
    >"$cache/$suite-$who.make.log" 2>&1
  coreutils_restore
  local p=0 f=0 s=0 failed=() result name cases count
  for t in "$@"; do
    result=$(sed -n 's/^:test-result: //p' "$cu/${t%.*}.trs" 2>/dev/null | head -n 1)
    name=${t#tests/}
    case $result in
      PASS|XFAIL) p=$((p + 1)) ;;
      SKIP) s=$((s + 1)) ;;
      *)
        f=$((f + 1))
        if grep -q '^peer-suites: timed out' "$cu/${t%.*}.log" 2>/dev/null; then
          name="$name (timed out after $PEER_SUITES_TIMEOUT s)"
        elif [ -z "$result" ]; then
          name="$name (no result: $cache/$suite-$who.make.log)"
        else
          # Coreutils.pm names each failing case of a .pl test.
          cases=$(sed -n 's/^[^ ]*: test \([^ :]*\)[: ].*/\1/p' "$cu/${t%.*}.log" 2>/dev/null \
                  | sort -u)
          if [ -n "$cases" ]; then
            count=$(wc -l <<<"$cases")
            cases=$(head -n 40 <<<"$cases" | tr '\n' ' ')
            [ "$count" -gt 40 ] && cases="$cases..."
            name="$name [$count cases: ${cases% }]"
          fi
        fi
        failed+=("$name")
        ;;
    esac
  done
  report "$suite" "$who" "$p" "$f" "$s" "${failed[@]}"
}
coreutils_suite() {
  local suite=$1
  shift
  echo "== $suite: GNU coreutils 9.1"
  if ! coreutils_build; then
    not_run "$suite" "coreutils 9.1 could not be fetched or built"
    return
  fi
  echo "$suite: $# tests"
  coreutils_run "$suite" control /usr/bin "$@"
  coreutils_run "$suite" zcopy "$links" "$@"
}

# --- xxhsum -----------------------------------------------------------------------
xx=$cache/src/xxhash-0.8.3
# xxhsum_run WHO TOOL: every command of the checks, in order, in a fresh copy of
# the source tree whose ./xxhsum and tests/xxhsum are TOOL. Commands that do not
# run xxhsum (setup, cleanup) run but are not counted.
xxhsum_run() {
  local who=$1 tool=$2 work=$cache/run/xxhash-$1
  rm -rf "$work"
  mkdir -p "$cache/run"
  cp -a "$xx" "$work"
  ln -sfn "$tool" "$work/xxhsum"
  ln -sfn "$tool" "$work/tests/xxhsum"
  local p=0 f=0 failed=() target n line script
  local logf=$cache/xxhsum-$who.log
  : > "$logf"
  for target in check test-xxhsum-c; do
    n=0
    while IFS= read -r line; do
      case $line in '#'*|'') continue ;; esac
      n=$((n + 1))
      echo "+ $line" >>"$logf"
      if (cd "$work" && timeout -k 10 "$PEER_SUITES_TIMEOUT" sh -c "$line") >>"$logf" 2>&1 </dev/null; then
        case $line in *xxhsum*) p=$((p + 1)) ;; esac
      else
        case $line in *xxhsum*) f=$((f + 1)); failed+=("$target#$n: $line") ;; esac
      fi
    done < <(make -s -n --no-print-directory -C "$xx" -o xxhsum -o test_sanity "$target")
  done
  for script in cli-comment-line.sh cli-ignore-missing.sh filename-escape.sh; do
    n=0
    while IFS= read -r line; do
      n=$((n + 1))
      case $line in '#'*|''|'set '*) continue ;; esac
      echo "+ $line" >>"$logf"
      if (cd "$work/tests" && timeout -k 10 "$PEER_SUITES_TIMEOUT" bash -c "$line") >>"$logf" 2>&1 </dev/null; then
        case $line in *xxhsum*) p=$((p + 1)) ;; esac
      else
        case $line in *xxhsum*) f=$((f + 1)); failed+=("$script:$n: $line") ;; esac
      fi
    done < "$xx/tests/$script"
  done
  report xxhsum "$who" "$p" "$f" 0 "${failed[@]}"
}
xxhsum_suite() {
  echo "== xxhsum: xxHash 0.8.3 CLI checks"
  if ! debian_source xxhash "$xxhash_version" xxhash-0.8.3; then
    not_run xxhsum "the xxhash $xxhash_version source package could not be fetched"
    return
  fi
  # The control is xxhsum built from the same source, so suite and tool agree on
  # the version (bookworm's xxhash binary is 0.8.1).
  if [ ! -x "$xx/xxhsum" ]; then
    nice -n 10 make -C "$xx" -j"$jobs" xxhsum >"$cache/xxhsum-build.log" 2>&1 || {
      not_run xxhsum "xxhsum did not build: $cache/xxhsum-build.log"; return; }
  fi
  xxhsum_run control "$xx/xxhsum"
  xxhsum_run zcopy "$links/xxhsum"
}

# --- b3sum ------------------------------------------------------------------------
b3=$cache/src/b3sum-$b3sum_version
b3sum_fetch() {
  [ -e "$b3/.peer-suites-unpacked" ] && return 0
  command -v cargo >/dev/null || { log "cargo is needed to fetch b3sum"; return 1; }
  # cargo fetches the crate through the registry for a throwaway manifest that
  # depends on it; the .crate it leaves in cargo's cache is the published source.
  local m=$cache/b3sum-fetch
  mkdir -p "$m/src"
  printf '[package]\nname = "b3sum-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nb3sum = "=%s"\n' \
    "$b3sum_version" > "$m/Cargo.toml"
  : > "$m/src/lib.rs"
  cargo fetch -q --manifest-path "$m/Cargo.toml" >"$cache/b3sum-fetch.log" 2>&1 || {
    log "cargo fetch of b3sum $b3sum_version failed: $cache/b3sum-fetch.log"; return 1; }
  local crates=("${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"b3sum-$b3sum_version.crate") crate
  crate=${crates[0]}
  [ -e "$crate" ] || { log "no b3sum-$b3sum_version.crate in cargo's cache"; return 1; }
  mkdir -p "$cache/src"
  rm -rf "$b3"
  tar -xzf "$crate" -C "$cache/src" || return 1
  touch "$b3/.peer-suites-unpacked"
}
# The test finds the binary at the compile-time path env!("CARGO_BIN_EXE_b3sum"),
# target/debug/b3sum: each run puts the tool under test at that path (a link whose
# name stays b3sum) and runs the compiled test binary itself, one test at a time.
b3sum_run() {
  local who=$1 tool=$2 exe=$3
  ln -sfn "$tool" "$b3/target/debug/b3sum"
  local p=0 f=0 s=0 failed=() name
  local logf=$cache/b3sum-$who.log
  : > "$logf"
  while IFS= read -r name; do
    if (cd "$b3" && timeout -k 10 "$PEER_SUITES_TIMEOUT" "$exe" --exact "$name" --test-threads=1) >>"$logf" 2>&1 </dev/null; then
      p=$((p + 1))
    else
      f=$((f + 1)); failed+=("$name")
    fi
  done < <("$exe" --list --format terse 2>/dev/null | sed -n 's/: test$//p')
  report b3sum "$who" "$p" "$f" "$s" "${failed[@]}"
}
b3sum_suite() {
  echo "== b3sum: b3sum $b3sum_version tests/cli_tests.rs"
  if ! b3sum_fetch; then
    not_run b3sum "the b3sum $b3sum_version crate could not be fetched"
    return
  fi
  # Built once; cargo is not run again, so it never relinks target/debug/b3sum
  # through the link the runs put there.
  if [ ! -e "$b3/cli_tests.path" ]; then
    (cd "$b3" && CARGO_TARGET_DIR=target nice -n 10 cargo test -q --locked --no-run \
       --test cli_tests --message-format=json 2>"$cache/b3sum-build.log") \
      | grep -o '"executable":"[^"]*cli_tests[^"]*"' | tail -n 1 | cut -d'"' -f4 >"$b3/cli_tests.path"
    if [ ! -s "$b3/cli_tests.path" ] || [ ! -x "$b3/target/debug/b3sum" ]; then
      rm -f "$b3/cli_tests.path"
      not_run b3sum "b3sum and its tests did not build: $cache/b3sum-build.log"
      return
    fi
    mv "$b3/target/debug/b3sum" "$b3/b3sum.control"
  fi
  local exe
  exe=$(cat "$b3/cli_tests.path")
  b3sum_run control "$b3/b3sum.control" "$exe"
  b3sum_run zcopy "$links/b3sum" "$exe"
  ln -sfn "$b3/b3sum.control" "$b3/target/debug/b3sum"
}

for suite in $suites; do
  case $suite in
    coreutils-cp)
      coreutils_build || true
      mapfile -t tests < <(cd "$cu" 2>/dev/null && ls tests/cp/*.sh)
      coreutils_suite coreutils-cp "${tests[@]}" ;;
    coreutils-sum)
      coreutils_build || true
      mapfile -t tests < <(cd "$cu" 2>/dev/null && ls tests/misc/md5sum*.pl \
        tests/misc/sha1sum*.pl tests/misc/sha224sum.pl tests/misc/sha256sum.pl \
        tests/misc/sha384sum.pl tests/misc/sha512sum.pl tests/misc/md5sum-bsd.sh \
        tests/misc/md5sum-parallel.sh)
      coreutils_suite coreutils-sum "${tests[@]}" ;;
    xxhsum) xxhsum_suite ;;
    b3sum) b3sum_suite ;;
    *) die "unknown suite $suite (known: coreutils-cp coreutils-sum xxhsum b3sum)" ;;
  esac
done

echo "== summary ($((SECONDS - started)) s; logs in $cache)"
printf '%s\n' "${summary[@]}"
