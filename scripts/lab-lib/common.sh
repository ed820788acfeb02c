# shellcheck shell=bash
# shellcheck disable=SC2034  # settings used by the other lab-lib files
# scripts/lab-lib/common.sh — shared settings for scripts/lab (sourced, not run).
#
# Everything the lab creates lives under $LAB ($MAILSHIM_LAB_DIR, default
# /tmp/mailshim-lab). Every port is base + $MAILSHIM_LAB_PORT_OFFSET so that
# several labs (a demo and a test run) can run side by side.
# Nothing here reads or writes /etc/postfix or /etc/dovecot configuration.

LAB="${MAILSHIM_LAB_DIR:-/tmp/mailshim-lab}"
OFF="${MAILSHIM_LAB_PORT_OFFSET:-0}"

case "$LAB" in
  /*) ;;
  *) echo "lab: MAILSHIM_LAB_DIR must be an absolute path (got '$LAB')" >&2; exit 2 ;;
esac
LAB="${LAB%/}"
# Dovecot and Postfix put unix sockets under $LAB; sun_path is 108 bytes.
if [ "${#LAB}" -gt 60 ]; then
  echo "lab: MAILSHIM_LAB_DIR is too long for unix socket paths (max 60 chars): $LAB" >&2
  exit 2
fi
case "$LAB" in
  *[!A-Za-z0-9/._-]*) echo "lab: MAILSHIM_LAB_DIR may only contain [A-Za-z0-9/._-]: $LAB" >&2; exit 2 ;;
esac
if ! [[ "$OFF" =~ ^[0-9]+$ ]] || [ "$OFF" -gt 40000 ]; then
  echo "lab: MAILSHIM_LAB_PORT_OFFSET must be an integer 0..40000 (got '$OFF')" >&2
  exit 2
fi

# Backend (Postfix / Dovecot) ports.
LAB_SMTP_PORT=$((20587 + OFF))    # Postfix submission, STARTTLS required
LAB_SMTPS_PORT=$((20465 + OFF))   # Postfix submissions, implicit TLS
LAB_IMAP_PORT=$((20143 + OFF))    # Dovecot imap (STARTTLS)
LAB_IMAPS_PORT=$((20993 + OFF))   # Dovecot imaps
LAB_POP3_PORT=$((20110 + OFF))    # Dovecot pop3 (STLS)
LAB_POP3S_PORT=$((20995 + OFF))   # Dovecot pop3s
# Backends that take a PROXY v2 header from mailshim instead of XCLIENT / ID
# (Postfix smtpd_upstream_proxy_protocol = haproxy, Dovecot haproxy = yes).
LAB_SMTP_PROXY_PORT=$((20588 + OFF))
LAB_IMAP_PROXY_PORT=$((20144 + OFF))
LAB_POP3_PROXY_PORT=$((20111 + OFF))
# mailshim front ports (mailshim itself is started by its own tooling).
MS_SMTP_PORT=$((10587 + OFF))
MS_SMTPS_PORT=$((10465 + OFF))
MS_IMAP_PORT=$((10143 + OFF))
MS_IMAPS_PORT=$((10993 + OFF))
MS_POP3_PORT=$((10110 + OFF))
MS_POP3S_PORT=$((10995 + OFF))

LAB_HOST=127.0.0.1
LAB_SERVER_NAME=mail.example.test
LAB_DOMAIN=example.test
# The one address the backends trust (XCLIENT / login_trusted_networks).
MAILSHIM_SOURCE_ADDRESS=127.0.0.10
VMAIL_USER=vmail

PF_DIR="$LAB/postfix"             # main.cf, master.cf, maps
PF_QUEUE="$LAB/postfix-queue"     # queue_directory (pid/master.pid lives here)
PF_DATA="$LAB/postfix-data"       # data_directory (master.lock lives here)
PF_LOG="$LAB/postfix.log"
DC_DIR="$LAB/dovecot"             # dovecot.conf, users
DC_RUN="$LAB/dovecot-run"         # base_dir (master.pid, sockets)
DC_STATE="$LAB/dovecot-state"     # state_dir
DC_LOG="$LAB/dovecot.log"
DC_CONF="$DC_DIR/dovecot.conf"
MAILDIRS="$LAB/maildirs"
# Dovecot process titles become "<instance_name>/imap-login" etc.
if [ "$OFF" -eq 0 ]; then DC_INSTANCE=mailshim-lab; else DC_INSTANCE="mailshim-lab-$OFF"; fi

lab_log()  { printf 'lab: %s\n' "$*"; }
lab_warn() { printf 'lab: WARNING: %s\n' "$*" >&2; }
lab_die()  { printf 'lab: ERROR: %s\n' "$*" >&2; exit 1; }

# pid_alive PID — true if PID is a live (non-zombie) process.
pid_alive() {
  local pid="$1" state
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != Z ]
}

# read_pid FILE — first word of FILE, or nothing.
read_pid() {
  [ -r "$1" ] || return 0
  awk 'NR==1 {print $1; exit}' "$1" 2>/dev/null | tr -dc '0-9'
}

# pgroup_members PGID — pids of live processes in process group PGID.
pgroup_members() {
  local pgid="$1"
  [ -n "$pgid" ] || return 0
  ps -e -o pid=,pgid=,stat= | awk -v g="$pgid" '$2 == g && $3 !~ /^Z/ {print $1}'
}

# kill_pgroup PGID NAME — TERM, wait up to 5 s, then KILL every member of the
# process group PGID. PGID is the pid of a daemon master that made itself a
# session leader (Postfix master, Dovecot master); refuses our own group.
kill_pgroup() {
  local pgid="$1" name="$2"
  [ -n "$pgid" ] || return 0
  if [ "$pgid" = "$(ps -o pgid= -p $$ | tr -d ' ')" ]; then
    lab_warn "$name: not killing process group $pgid (it is our own)"
    return 0
  fi
  [ -n "$(pgroup_members "$pgid")" ] || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    [ -n "$(pgroup_members "$pgid")" ] || return 0
    sleep 0.1
  done
  lab_warn "$name: process group $pgid still alive after TERM, sending KILL"
  kill -KILL -- "-$pgid" 2>/dev/null || true
  sleep 0.2
}

# port_in_use PORT — true if something listens on 127.0.0.1:PORT (or a wildcard).
port_in_use() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# kill_strays PGID EXE-REGEX NAME — after a master died uncleanly (kill -9), its
# children may live on in its process group and keep the listening sockets.
# Kills only members of group PGID whose executable matches EXE-REGEX.
kill_strays() {
  local pgid="$1" rx="$2" name="$3" p exe victims=()
  [ -n "$pgid" ] || return 0
  for p in $(pgroup_members "$pgid"); do
    exe=$(readlink "/proc/$p/exe" 2>/dev/null || true)
    [[ "$exe" =~ $rx ]] && victims+=("$p")
  done
  [ "${#victims[@]}" -gt 0 ] || return 0
  lab_warn "$name: killing leftover processes ${victims[*]} of dead master $pgid"
  kill -KILL "${victims[@]}" 2>/dev/null || true
  sleep 0.2
}
