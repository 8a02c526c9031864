# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are used by the scripts that source this file
# Helpers shared by the deploy/*/ scripts. Source it; it defines functions and
# a few variables and has no side effects besides that.
#
# Conventions (same for every component):
#   cache (downloads, survives runs, OUTSIDE the repo):
#     ${QS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quickstore}
#   run dirs (one per running server, removed by stop.sh):
#     ${QS_RUN_DIR:-/tmp/quickstore-run}/<component>-<name>
# Progress goes to stderr, so that a script's stdout carries only its result
# (start.sh: the KEY=value line, last).

QS_CACHE_ROOT="${QS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quickstore}"
QS_RUN_ROOT="${QS_RUN_DIR:-/tmp/quickstore-run}"
# Maven's local repository lives in the cache too, so a second fetch (or a
# fetch after the cache dir is wiped of one component) resolves offline.
QS_M2_REPO="$QS_CACHE_ROOT/m2"
# Pinned so the goal behaves the same whatever default Maven ships.
QS_DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

qs_log() { printf '[%s] %s\n' "${QS_LOG_TAG:-deploy}" "$*" >&2; }
qs_die() { printf '[%s] ERROR: %s\n' "${QS_LOG_TAG:-deploy}" "$*" >&2; exit 1; }

# qs_pom_property FILE NAME -> value of <NAME>...</NAME> in a pom (first hit).
# Plain sed: `mvn help:evaluate` would cost several seconds per call.
qs_pom_property() {
  sed -n "s:.*<$2>\\([^<]*\\)</$2>.*:\\1:p" "$1" | head -n 1
}

# qs_java [MIN_MAJOR] -> prints the java binary to use (JAVA_HOME first, then
# PATH); dies with an install hint if there is none or it is too old.
qs_java() {
  local min="${1:-17}" java ver major
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    java="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    java="$(command -v java)"
  else
    qs_die "java not found. Install a JDK >= $min (Debian: apt-get install -y openjdk-17-jdk-headless) or set JAVA_HOME."
  fi
  ver="$("$java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)"
  major="${ver%%.*}"
  [[ "$major" == 1 ]] && major="$(cut -d. -f2 <<<"$ver")"   # "1.8.0_x" style
  if ! [[ "$major" =~ ^[0-9]+$ ]] || (( major < min )); then
    qs_die "$java is version '${ver:-unknown}', need >= $min. Install openjdk-17-jdk-headless (apt-get) or point JAVA_HOME at a newer JDK."
  fi
  printf '%s\n' "$java"
}

qs_require_mvn() {
  command -v mvn >/dev/null 2>&1 \
    || qs_die "mvn not found. Install Maven (Debian: apt-get install -y maven); it fetches the jars from Maven Central."
}

# qs_port_in_use PORT -> 0 if something listens on 127.0.0.1:PORT.
qs_port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]] && return 0
  fi
  # Fallback (and belt-and-braces): try to connect.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# qs_free_port [EXCLUDE...] -> a loopback port nobody listens on.
# Picked from 20000-32767, below Linux's default ephemeral range
# (32768-60999), so outgoing connections of other processes do not grab it
# between our pick and the server's bind. There is still a small race with
# other pickers; start scripts retry on "Address already in use".
qs_free_port() {
  local p tries=0 ex taken
  while (( tries++ < 200 )); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12768 ))
    taken=0
    for ex in "$@"; do [[ "$ex" == "$p" ]] && taken=1; done
    (( taken )) && continue
    qs_port_in_use "$p" || { printf '%s\n' "$p"; return 0; }
  done
  qs_die "could not find a free loopback port"
}

# qs_pid_alive PID -> 0 if the process exists and is not a zombie (a killed
# server lingers as a zombie until its parent, often init, reaps it).
qs_pid_alive() {
  [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"          # the field after "(comm) " is the state
  [[ "${stat:0:1}" != Z ]]
}

# qs_pid_matches PID PATTERN -> 0 if the process's command line contains
# PATTERN. Guards against killing an unrelated process that reused a stale pid.
qs_pid_matches() {
  [[ -r "/proc/$1/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

# qs_stop_pid PID PATTERN TIMEOUT_S NAME: SIGTERM, wait, SIGKILL.
qs_stop_pid() {
  local pid="$1" pattern="$2" timeout="$3" name="$4" waited=0
  if ! qs_pid_alive "$pid"; then
    qs_log "$name: not running (pid ${pid:-none})"
    return 0
  fi
  if ! qs_pid_matches "$pid" "$pattern"; then
    qs_log "$name: pid $pid is not ours any more (command line lacks '$pattern'); not killing it"
    return 0
  fi
  qs_log "$name: SIGTERM to pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  while qs_pid_alive "$pid" && (( waited < timeout * 10 )); do
    sleep 0.1
    waited=$(( waited + 1 ))
  done
  if qs_pid_alive "$pid"; then
    qs_log "$name: still alive after ${timeout}s, SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while qs_pid_alive "$pid"; do sleep 0.1; done
  fi
  qs_log "$name: stopped"
}

# qs_launch PIDFILE OUTFILE CMD... : start CMD in its own session (so a
# Ctrl-C or the end of the calling shell/test harness does not take it down
# half-way; stop.sh is the way to stop it), stdout+stderr to OUTFILE, and the
# real pid of CMD (not of a wrapper) in PIDFILE.
qs_launch() {
  local pidfile="$1" out="$2"
  shift 2
  # shellcheck disable=SC2016  # $$ and $@ are for the inner sh
  setsid sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >"$out" 2>&1 &
  local i=0
  while [[ ! -s "$pidfile" ]] && (( i++ < 100 )); do sleep 0.05; done
  [[ -s "$pidfile" ]] || qs_die "process did not start (no pid written to $pidfile); see $out"
}

# qs_with_lock LOCKFILE CMD... : run CMD holding an exclusive lock, so two
# concurrent fetches into the same cache do not trample each other.
qs_with_lock() {
  local lock="$1"
  shift
  mkdir -p "$(dirname "$lock")"
  if command -v flock >/dev/null 2>&1; then
    (
      flock 9
      "$@"
    ) 9>"$lock"
  else
    "$@"
  fi
}

# qs_maven_fetch POM HOME LABEL JAR_GLOB...
# Copies the runtime dependencies pinned in POM from Maven Central into
# HOME/libs (once: a marker holding the pom's checksum makes later calls do
# nothing, offline; editing the pom redoes the copy). Each JAR_GLOB must
# match a file afterwards, or the fetch fails. Prints HOME/libs.
qs_maven_fetch() {
  local pom="$1" home="$2" label="$3"
  shift 3
  local libs="$home/libs" marker="$home/.complete" sum
  sum="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [[ -f "$marker" && "$(cat "$marker")" == "$sum" ]]; then
    printf '%s\n' "$libs"
    return 0
  fi
  # shellcheck disable=SC2317 # called through qs_with_lock
  _qs_maven_fetch_locked() {
    # Re-check under the lock: another process may have finished meanwhile.
    if [[ -f "$marker" && "$(cat "$marker")" == "$sum" ]]; then return 0; fi
    qs_java 17 >/dev/null
    qs_require_mvn
    qs_log "fetching $label jars from Maven Central into $libs"
    # Maven works on a copy of the pom in the cache, so nothing (target/,
    # ...) is ever written into the repo.
    local work="$home/.fetch-work" glob
    rm -rf "$work" "$libs.tmp"
    mkdir -p "$work"
    cp "$pom" "$work/pom.xml"
    # -B: no progress bars in CI logs; -q: only errors (failures still
    # print). includeScope=runtime: compile+runtime deps, what the server
    # loads. sed: Maven 3.8 prints stray ANSI resets even with -B; with
    # pipefail the `if` still sees mvn's exit status.
    if ! mvn -B -q -Dstyle.color=never -f "$work/pom.xml" \
        -Dmaven.repo.local="$QS_M2_REPO" \
        "$QS_DEP_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime \
        -DoutputDirectory="$libs.tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2; then
      qs_die "mvn could not fetch $label (is Maven Central reachable? see errors above)"
    fi
    for glob in "$@"; do
      compgen -G "$libs.tmp/$glob" >/dev/null \
        || qs_die "fetch finished but $glob is missing in $libs.tmp"
    done
    rm -rf "$libs"
    mv "$libs.tmp" "$libs"
    rm -rf "$work"
    printf '%s\n' "$sum" >"$marker"
    qs_log "done: $(find "$libs" -name '*.jar' | wc -l) jars, $(du -sh "$libs" | cut -f1)"
  }
  mkdir -p "$home"
  qs_with_lock "$home.lock" _qs_maven_fetch_locked
  printf '%s\n' "$libs"
}

# qs_stop_runs KIND PIDFILE CONFIG_REL [RUN_DIR|NAME ...]
# Stops servers that deploy/KIND/start.sh started: the given run dirs or
# names (KIND-NAME under $QS_RUN_ROOT), or every KIND-* run dir. SIGTERM,
# then SIGKILL after $QS_STOP_TIMEOUT seconds (default 30); the process
# must name RUN/CONFIG_REL on its command line, so another test's server
# (or an unrelated process that reused the pid) is never killed. Removes
# each run dir afterwards unless KEEP=1.
qs_stop_runs() {
  local kind="$1" pidfile="$2" config="$3" timeout="${QS_STOP_TIMEOUT:-30}"
  shift 3
  local runs=() arg run pid
  if (( $# )); then
    for arg in "$@"; do
      if [[ -d "$arg" ]]; then runs+=("$(cd "$arg" && pwd)")
      elif [[ -d "$QS_RUN_ROOT/$kind-$arg" ]]; then runs+=("$QS_RUN_ROOT/$kind-$arg")
      else qs_die "no such run dir or name: $arg"
      fi
    done
  else
    shopt -s nullglob
    runs=("$QS_RUN_ROOT/$kind"-*)
  fi
  (( ${#runs[@]} )) || { qs_log "nothing to stop under $QS_RUN_ROOT"; return 0; }
  for run in "${runs[@]}"; do
    [[ -d "$run" ]] || continue
    pid=""
    [[ -f "$run/$pidfile" ]] && pid="$(cat "$run/$pidfile")"
    qs_stop_pid "$pid" "$run/$config" "$timeout" "$kind $(basename "$run")"
    if [[ "${KEEP:-0}" == 1 ]]; then
      qs_log "KEEP=1: leaving $run"
    else
      rm -rf "$run"
    fi
  done
}
