#!/usr/bin/env python3
"""bench.py -- corral's own benchmark (`make bench`, via tests/bench/run.sh).

The same pgbench workloads against four targets: PostgreSQL directly, PgBouncer, and
corral with 1 and with 2 workers, interleaved over several rounds; a markdown table of
medians per scenario goes to stdout and to WORKDIR/results.md (raw runs: results.json).
The method follows the team's ../shared/bench/compare, but nothing here depends on it.

Setup (once): a throwaway PostgreSQL 15 with scripts/pgtmp.sh in WORKDIR/pg (127.0.0.1,
a free port below the ephemeral range, max_connections = 105, shared_buffers = 256MB,
fsync off), role "bench" (password "bench", stored as a SCRAM verifier, CONNECTION
LIMIT 100 so the superuser's monitoring never takes a slot the workload needs),
database "bench", `pgbench -i -s SCALE`.  The verifier (pg_authid.rolpassword) is
written to both proxies' auth files, so a client pays the same SCRAM login to either.

Both proxies get the same settings: 127.0.0.1 only, auth_type = scram-sha-256,
pool_mode = transaction, default_pool_size = 20, max_client_conn = 10000, connection
logging off, and the same database line (a fixed server login as bench).  PgBouncer is
/usr/sbin/pgbouncer in the foreground (as root it is started with -u postgres, since
it refuses to run as root: the process we started is the pgbouncer process).

Scenarios (each: pgbench -n -T DURATION -P 1 -j 2, over TCP to the target):
  select   -S -c 100      pooled select-only, 100 persistent clients
  tpcb     -c 50          TPC-B-like, 50 persistent clients
  connect  -C -S -c 200   a new connection per transaction, select-only, 200 clients
           (direct: more clients than the role may have, so clients abort there)
  simple50 / prepared50   -S -M simple / -M prepared -c 50 (only when asked for):
           named prepared statements in transaction pooling against the same queries
  idle5000 -S -c 20       (proxies only; the bench role may hold 100 connections to
           PostgreSQL itself, so direct is left out) while N = --idle-clients
           (default 5000) idle clients are held: after a 1 s warm-up pgbench (-S -c 20),
           the proxy's VmRSS is read, tests/bench/idle_crowd.py opens the N connections
           (each a full SCRAM login as bench, 200 at a time, then idle: no query), VmRSS
           is read again 1 s after the last login; memory per idle client =
           (after - before) / connected, proxy CPU per login = its CPU time during the
           logins / connected.  Then pgbench runs while they stay idle.  Cheap: the
           5000 logins take about 2 s (the client caches SCRAM's SaltedPassword), so a
           run costs about DURATION + 5 s; it is in the default set.

For each scenario, each round, each target (order rotated each round):
  truncate pgbench_history, vacuum branches/tellers, checkpoint; wait until no backend
  of bench is left from the previous run; wait (at most --quiet-max s) until the host's
  CPU is at most --quiet-gate % busy; start the proxy fresh on a free port; read its CPU
  time (utime + stime, /proc/PID/stat); run pgbench while sampling the server backends
  of bench (pg_stat_activity, psql over the superuser unix socket, every 0.5 s); read
  the CPU time again; stop the proxy (SIGTERM, SIGKILL after 10 s).
Reported: medians of tps, latency average, failed transactions / aborted clients,
peak server backends, proxy CPU seconds per 1000 transactions; ratios corral/pgbouncer
of tps and of CPU per transaction.  The -C scenarios also print "proxy CPU ms per
login" (a transaction is a login there, so it is the same number as CPU s per 1000 tx);
idle5000 prints memory per idle client and proxy CPU ms per login of the idle crowd.

Everything started is stopped on exit (also on SIGINT/SIGTERM/SIGHUP), and the
cluster's data directory removed (--keep leaves PostgreSQL running and its data);
WORKDIR keeps results.md, results.json, runs/ (pgbench output) and the proxies' logs.
Exit status: 0, or 1 if interrupted, if a proxy died during a run, or if a run gave no
result at all.
"""
import argparse, json, os, re, resource, shutil, signal, socket, statistics, subprocess
import sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
E = os.environ.get
PG_BIN = E("PG_BIN", "/usr/lib/postgresql/15/bin")
PGBOUNCER = E("PGBOUNCER", "/usr/sbin/pgbouncer")
CORRAL = E("CORRAL_BIN", os.path.join(ROOT, "bin", "corral"))
RUN_AS = E("PG_RUN_AS", "postgres")
IS_ROOT = os.geteuid() == 0

USER, PASSWORD, DB = "bench", "bench", "bench"
ROLE_LIMIT = 100            # connections the bench role may hold
MAX_CONNECTIONS = ROLE_LIMIT + 5
POOL_MODE, POOL_SIZE, MAX_CLIENT_CONN = "transaction", 20, 10000

SCENARIOS = {
    "select":  {"args": ["-S", "-c", "100"], "what": "pooled select-only, 100 persistent clients"},
    "tpcb":    {"args": ["-c", "50"], "what": "TPC-B-like, 50 persistent clients"},
    "connect": {"args": ["-C", "-S", "-c", "200"],
                "what": "new connection per transaction, select-only, 200 clients"},
    # Prepared statements in transaction pooling against the same load as simple queries
    # (not in the default set: make bench BENCH_ARGS="--scenarios simple50,prepared50").
    "simple50":   {"args": ["-S", "-M", "simple", "-c", "50"],
                   "what": "select-only, simple protocol, 50 persistent clients"},
    "prepared50": {"args": ["-S", "-M", "prepared", "-c", "50"],
                   "what": "select-only, named prepared statements, 50 persistent clients"},
}
DEFAULT_SCENARIOS = ["select", "tpcb", "connect", "idle5000"]
SCENARIOS["connect100"] = {"args": ["-C", "-S", "-c", "100"],
                           "what": "new connection per transaction, select-only, 100 clients"}
# N idle logged-in clients held while pgbench runs (N = --idle-clients); proxies only
# (the bench role may hold 100 connections to PostgreSQL itself).  In the default set
# (5000 logins take ~2 s); alone: make bench BENCH_ARGS="--scenarios idle5000".
SCENARIOS["idle5000"] = {"args": ["-S", "-c", "20"], "idle": True,
                         "what": "select-only, 20 clients, while N idle logged-in clients are held"}
IDLE_CROWD = os.path.join(HERE, "idle_crowd.py")
# --tls: both proxies get client TLS (client_tls_sslmode = require, a self-signed
# certificate made here) and pgbench connects with sslmode=require.
TLS = {"on": False, "cert": None, "key": None}
TARGETS = ["direct", "pgbouncer", "corral-w1", "corral-w2"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ small helpers
def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port():
    """A port below the ephemeral range (so no client socket of a storm ever sits on it)
    that binds without SO_REUSEADDR, i.e. with no listener and no TIME_WAIT socket."""
    import random
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 20000-32000")


def proc_cpu(pid):
    """utime + stime of a process (all its threads), seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def proc_rss(pid):
    """VmRSS of a process in bytes; None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def host_busy_pct(interval=1.0):
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = snap()
    time.sleep(interval)
    t1, i1 = snap()
    return 100.0 * (1 - (i1 - i0) / (t1 - t0)) if t1 > t0 else 0.0


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


def chown_run_as(*paths):
    if IS_ROOT:
        for p in paths:
            shutil.chown(p, RUN_AS)


# ------------------------------------------------------------------ PostgreSQL
class Pg:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")      # pgtmp.sh DIR; cluster in DIR/pg
        self.sock = os.path.join(self.dir, "pg")
        self.port = None
        self.started = False

    def pgtmp(self, *args, check=True):
        r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "pgtmp.sh"), *args],
                           capture_output=True, text=True, env=clean_env(PG_BIN=PG_BIN))
        if check and r.returncode:
            raise RuntimeError(f"pgtmp.sh {args[0]} failed:\n{r.stdout}{r.stderr}")
        return r.stdout.strip()

    def start(self):
        os.makedirs(self.dir)
        self.started = True
        out = self.pgtmp("start", self.dir, f"max_connections={MAX_CONNECTIONS}",
                         "shared_buffers=256MB", "max_wal_size=4GB", "checkpoint_timeout=30min")
        self.port = int(out.splitlines()[-1])

    def stop(self):
        if self.started:
            self.pgtmp("stop", self.dir, check=False)
            self.started = False

    def su(self, *cmds, db="postgres", timeout=300):
        """psql as superuser over the unix socket; each command is sent on its own."""
        argv = [f"{PG_BIN}/psql", "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.sock,
                "-p", str(self.port), "-U", "postgres", "-d", db]
        for c in cmds:
            argv += ["-c", c]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=clean_env())
        if r.returncode:
            raise RuntimeError(f"psql: {r.stderr.strip()}")
        return r.stdout.strip()

    def backends(self):
        return int(self.su("select count(*) from pg_stat_activity where usename = "
                           f"'{USER}' and backend_type = 'client backend'", timeout=5))

    def wait_no_backends(self, max_wait=20):
        deadline = time.monotonic() + max_wait
        while time.monotonic() < deadline:
            try:
                if self.backends() == 0:
                    return True
            except Exception:
                pass
            time.sleep(0.2)
        return False


class Sampler(threading.Thread):
    """Peak number of server backends of the bench role, sampled every 0.5 s."""
    def __init__(self, pg):
        super().__init__(daemon=True)
        self.pg, self.evt, self.peak = pg, threading.Event(), None

    def run(self):
        while True:
            try:
                n = self.pg.backends()
                self.peak = n if self.peak is None else max(self.peak, n)
            except Exception:
                pass            # e.g. a slow answer under load: a gap, not a failure
            if self.evt.wait(0.5):
                return

    def stop(self):
        self.evt.set()
        self.join()
        return self.peak


# ------------------------------------------------------------------ targets
class Target:
    """direct (PostgreSQL itself) or a proxy started fresh, in the foreground, per run."""
    def __init__(self, name, workdir, pg, secret):
        self.name, self.workdir, self.pg = name, workdir, pg
        self.popen, self.port = None, None
        self.dir = os.path.join(workdir, name)
        if name == "direct":
            return
        os.makedirs(self.dir, exist_ok=True)
        self.userlist = os.path.join(self.dir, "userlist.txt")
        with open(self.userlist, "w") as f:
            f.write(f'"{USER}" "{secret}"\n')
        os.chmod(self.userlist, 0o600)
        self.ini = os.path.join(self.dir, "pgbouncer.ini" if name == "pgbouncer" else "corral.ini")
        self.logfile = os.path.join(workdir, f"{name}.log")

    def tls_lines(self):
        if not TLS["on"]:
            return ""
        return (f"client_tls_sslmode = require\nclient_tls_cert_file = {TLS['cert']}\n"
                f"client_tls_key_file = {TLS['key']}\n")

    @property
    def is_proxy(self):
        return self.name != "direct"

    def dbline(self):
        return (f"{DB} = host=127.0.0.1 port={self.pg.port} dbname={DB} "
                f"user={USER} password={PASSWORD}")

    def write_ini(self, port):
        if self.name == "pgbouncer":
            text = f"""; written by tests/bench/bench.py
[databases]
{self.dbline()}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
listen_backlog = 4096
auth_type = scram-sha-256
auth_file = {self.userlist}
pool_mode = {POOL_MODE}
default_pool_size = {POOL_SIZE}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {MAX_CLIENT_CONN}
ignore_startup_parameters = extra_float_digits
logfile =
pidfile =
log_connections = 0
log_disconnections = 0
{self.tls_lines()}"""
        else:
            workers = int(self.name.rsplit("-w", 1)[1])
            text = f"""; written by tests/bench/bench.py
[corral]
listen_addr = 127.0.0.1
listen_port = {port}
workers = {workers}
auth_type = scram-sha-256
auth_file = {self.userlist}
pool_mode = {POOL_MODE}
default_pool_size = {POOL_SIZE}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {MAX_CLIENT_CONN}
log_level = warn
{self.tls_lines()}
[databases]
{self.dbline()}
"""
        with open(self.ini, "w") as f:
            f.write(text)
        if self.name == "pgbouncer":     # it reads its files as postgres after -u
            chown_run_as(self.dir, self.ini, self.userlist)

    def start(self):
        if not self.is_proxy:
            self.port = self.pg.port
            return
        last = None
        for _ in range(3):               # another port if someone took ours meanwhile
            port = free_port()
            self.write_ini(port)
            if self.name == "pgbouncer":
                argv = [PGBOUNCER] + (["-u", RUN_AS] if IS_ROOT else []) + [self.ini]
            else:
                argv = [CORRAL, "-c", self.ini]
            with open(self.logfile, "a") as lf:
                lf.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(argv)}\n")
                lf.flush()
                self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf,
                                              stderr=subprocess.STDOUT, start_new_session=True,
                                              env=clean_env())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if self.popen.poll() is not None:
                    break
                if port_open(port):
                    self.port = port
                    return
                time.sleep(0.05)
            last = f"exit status {self.popen.poll()}" if self.popen.poll() is not None \
                else "not listening after 30 s"
            self.stop()
        raise RuntimeError(f"{self.name} did not start ({last}); see {self.logfile}")

    def cpu(self):
        return proc_cpu(self.popen.pid) if self.popen and self.popen.poll() is None else None

    def rss(self):
        return proc_rss(self.popen.pid) if self.popen and self.popen.poll() is None else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def stop(self):
        p, self.popen = self.popen, None
        if p is None:
            return
        if p.poll() is None:             # Popen has not reaped it: the pid is still ours
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                log(f"  {self.name} (pid {p.pid}) ignored SIGTERM for 10 s; SIGKILL")
                p.kill()
                p.wait()


# ------------------------------------------------------------------ one run
def parse_pgbench(out, err):
    r = {}
    for key, pat in [("tx", r"number of transactions actually processed: (\d+)"),
                     ("failed_tx", r"number of failed transactions: (\d+)"),
                     ("latency_ms", r"latency average = ([0-9.]+) ms"),
                     ("tps", r"tps = ([0-9.]+)")]:
        m = re.search(pat, out)
        r[key] = float(m.group(1)) if m else None
    # "client 5 aborted while establishing connection", "client 9 script 0 aborted in command 1"
    r["aborted_clients"] = len(set(re.findall(r"client (\d+) (?:script \d+ )?aborted", err)))
    errors = {}
    for line in err.splitlines():
        if line.startswith("progress:") or "Run was aborted" in line:
            continue
        m = re.search(r"\b(FATAL|ERROR):\s+(.*)", line)
        if m:
            text = f"{m.group(1)}: {m.group(2)}"
        elif line.startswith("pgbench: error: ") and "aborted" not in line:
            text = line[len("pgbench: error: "):]
        else:
            continue
        text = re.sub(r"\d+", "N", text)[:100]
        errors[text] = errors.get(text, 0) + 1
    r["errors"] = errors
    return r


class Runner:
    def __init__(self, a, pg):
        self.a, self.pg = a, pg
        self.pgbench = None
        self.crowd = None

    def pgbench_env(self):
        return clean_env(PGPASSWORD=PASSWORD, PGSSLMODE="require" if TLS["on"] else "disable")

    def idle_start(self, tgt, res):
        """Warm up, read VmRSS, open --idle-clients idle logins, read VmRSS again."""
        a = self.a
        subprocess.run([f"{PG_BIN}/pgbench", "-h", "127.0.0.1", "-p", str(tgt.port), "-U", USER,
                        "-n", "-T", "1", "-j", "2", "-S", "-c", "20", DB],
                       capture_output=True, env=self.pgbench_env(), timeout=60)
        time.sleep(0.5)
        rss0, cpu0 = tgt.rss(), tgt.cpu()
        if TLS["on"]:
            raise RuntimeError("idle5000 has no TLS client (idle_crowd.py speaks plain TCP)")
        t0 = time.monotonic()
        self.crowd = subprocess.Popen(
            [sys.executable, IDLE_CROWD, "--port", str(tgt.port), "--user", USER,
             "--password", PASSWORD, "--db", DB, "-n", str(a.idle_clients), "--timeout", "600"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, env=clean_env())
        line = ""
        while True:                      # READY {...} once every login is done or failed
            line = self.crowd.stdout.readline()
            if not line or line.startswith("READY "):
                break
        if not line:
            raise RuntimeError("idle_crowd.py ended without READY: "
                               + self.crowd.stderr.read()[-300:].strip())
        ready = json.loads(line[len("READY "):])
        cpu1 = tgt.cpu()
        time.sleep(1)
        rss1 = tgt.rss()
        n = ready["connected"]
        res.update({"idle_clients": a.idle_clients, "idle_connected": n,
                    "idle_failed": ready["failed"], "idle_login_s": ready["secs"],
                    "idle_errors": ready["errors"], "rss_before": rss0, "rss_after": rss1})
        if n and rss0 is not None and rss1 is not None:
            res["bytes_per_idle_client"] = (rss1 - rss0) / n
        if n and cpu0 is not None and cpu1 is not None:
            res["idle_login_cpu_s"] = round(cpu1 - cpu0, 3)
            res["proxy_cpu_ms_per_login"] = (cpu1 - cpu0) * 1000 / n
        log(f"  {tgt.name}: {n}/{a.idle_clients} idle clients in {ready['secs']} s, VmRSS "
            f"{fmt(rss0 and rss0 / 2**20, 1)} -> {fmt(rss1 and rss1 / 2**20, 1)} MiB"
            + (f", errors {ready['errors']}" if ready["errors"] else ""))

    def idle_stop(self, res):
        p, self.crowd = self.crowd, None
        if p is None:
            return
        try:
            out, _ = p.communicate("\n", timeout=60)
            m = re.search(r"^DONE (.*)$", out, re.M)
            if m and res is not None:
                res["idle_alive"] = json.loads(m.group(1))["alive"]
        except Exception:
            p.kill()
            p.wait()

    def run(self, scen, tgt, rnd, seq):
        a, pg = self.a, self.pg
        res = {"scenario": scen, "target": tgt.name, "round": rnd, "seq": seq}
        pg.su("truncate pgbench_history", "vacuum pgbench_branches, pgbench_tellers",
              "checkpoint", db=DB)
        if not pg.wait_no_backends():
            log(f"  warning: backends of {USER} still there before {tgt.name}")
        res["busy_before_pct"] = None
        if a.quiet_gate > 0:
            t0 = time.monotonic()
            while True:
                busy = host_busy_pct()
                if busy <= a.quiet_gate or time.monotonic() - t0 >= a.quiet_max:
                    break
                time.sleep(1)
            res["busy_before_pct"] = round(busy, 1)
        tgt.start()
        if SCENARIOS[scen].get("idle"):
            self.idle_start(tgt, res)
        base = os.path.join(a.workdir, "runs", f"{seq:03d}-{scen}-{tgt.name}-r{rnd}")
        argv = [f"{PG_BIN}/pgbench", "-h", "127.0.0.1", "-p", str(tgt.port), "-U", USER,
                "-n", "-T", str(a.duration), "-P", "1", "-j", "2", *SCENARIOS[scen]["args"], DB]
        res["argv"] = " ".join(argv[1:])
        cpu0 = tgt.cpu()
        sampler = Sampler(pg)
        sampler.start()
        t0 = time.monotonic()
        try:
            with open(base + ".out", "w") as fo, open(base + ".err", "w") as fe:
                self.pgbench = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                                start_new_session=True,
                                                env=self.pgbench_env())
            try:
                rc = self.pgbench.wait(a.duration + 60)
            except subprocess.TimeoutExpired:
                log(f"  pgbench ran {a.duration + 60} s; killing it")
                self.pgbench.kill()
                rc = self.pgbench.wait()
            self.pgbench = None
        finally:
            res["peak_backends"] = sampler.stop()
        res["wall_s"] = round(time.monotonic() - t0, 2)
        cpu1 = tgt.cpu()
        res["proxy_alive"] = tgt.alive() if tgt.is_proxy else None
        self.idle_stop(res)
        tgt.stop()
        with open(base + ".out") as fo, open(base + ".err") as fe:
            out, err = fo.read(), fe.read()
        res.update(parse_pgbench(out, err))
        res["rc"] = rc
        if tgt.is_proxy and cpu0 is not None and cpu1 is not None:
            res["proxy_cpu_s"] = round(cpu1 - cpu0, 3)
            if res["tx"]:
                res["proxy_cpu_s_per_1k_tx"] = (cpu1 - cpu0) * 1000 / res["tx"]
        if res["tps"] is None:
            res["status"] = "failed"
        elif (rc != 0 or res["aborted_clients"] or res["proxy_alive"] is False
              or res.get("idle_connected", 0) < res.get("idle_clients", 0)
              or res.get("idle_alive", 0) < res.get("idle_connected", 0)):
            res["status"] = "partial"
        else:
            res["status"] = "ok"
        if res["status"] != "ok":
            res["stderr_tail"] = err[-800:]
        return res

    def kill_pgbench(self):
        self.idle_stop(None)
        p, self.pgbench = self.pgbench, None
        if p and p.poll() is None:
            p.kill()
            p.wait()


# ------------------------------------------------------------------ report
def med(vals):
    v = [x for x in vals if x is not None]
    return statistics.median(v) if v else None


def fmt(x, nd=0):
    if x is None:
        return "–"
    return f"{x:,.{nd}f}"


def ratio(x, y):
    return f"{x / y:.2f}x" if x is not None and y else "–"


def report(meta, runs):
    L = [f"## corral bench — {meta['date']}", "",
         f"{meta['host']}; {meta['versions']}.", "",
         f"{meta['rounds']} round(s) × {meta['duration']} s per run, medians; order of targets "
         f"rotated each round; proxies restarted for every run.  Both proxies: {POOL_MODE} "
         f"pooling, default_pool_size {POOL_SIZE}, max_client_conn {MAX_CLIENT_CONN}, "
         f"scram-sha-256 with the same SCRAM secret"
         f"{'; client TLS (client_tls_sslmode = require, RSA 2048 self-signed; pgbench sslmode=require)' if TLS['on'] else ''}"
         f".  PostgreSQL: max_connections "
         f"{MAX_CONNECTIONS}, role {USER} limited to {ROLE_LIMIT}; pgbench -i -s {meta['scale']}.",
         ""]
    for scen in meta["scenarios"]:
        S = {}
        idle = SCENARIOS[scen].get("idle")
        connect = "-C" in SCENARIOS[scen]["args"]
        targets = [t for t in meta["targets"] if t != "direct" or not idle]
        for t in targets:
            rs = [r for r in runs if r["scenario"] == scen and r["target"] == t]
            errs = {}
            for r in rs:
                for k, v in r.get("errors", {}).items():
                    errs[k] = errs.get(k, 0) + v
                if r.get("error"):
                    errs[r["error"]] = errs.get(r["error"], 0) + 1
            S[t] = {k: med(r.get(k) for r in rs) for k in
                    ("tps", "latency_ms", "failed_tx", "aborted_clients", "peak_backends",
                     "proxy_cpu_s_per_1k_tx", "busy_before_pct", "idle_connected", "idle_login_s",
                     "rss_before", "rss_after", "bytes_per_idle_client", "proxy_cpu_ms_per_login")}
            S[t]["rounds"] = " / ".join(fmt(r.get("tps")) for r in sorted(rs, key=lambda r: r["round"]))
            S[t]["ok"] = f"{sum(r.get('status') == 'ok' for r in rs)}/{len(rs)}"
            S[t]["top_error"] = max(errs.items(), key=lambda kv: kv[1]) if errs else None
        what = SCENARIOS[scen]["what"]
        if idle:
            what = what.replace("N idle", f"{meta.get('idle_clients', '?'):,} idle")
        L += [f"### {scen} — {what}", "",
              f"`pgbench -n -T {meta['duration']} -P 1 -j 2 {' '.join(SCENARIOS[scen]['args'])}`"
              + (f", while `tests/bench/idle_crowd.py -n {meta.get('idle_clients')}` holds idle "
                 "SCRAM-logged-in clients (VmRSS before: after a 1 s warm-up pgbench; after: "
                 "1 s after the last login)" if idle else ""), ""]
        if idle:
            L += ["| target | idle clients connected | login s | proxy VmRSS before MiB "
                  "| after MiB | memory per idle client KiB | proxy CPU ms per login "
                  "| memory/client vs pgbouncer |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
            b = S.get("pgbouncer")
            for t in targets:
                s = S[t]
                rm = ratio(s["bytes_per_idle_client"], b["bytes_per_idle_client"]) \
                    if t.startswith("corral") and b else ""
                L.append(f"| {t} | {fmt(s['idle_connected'])} | {fmt(s['idle_login_s'], 1)} | "
                         f"{fmt(s['rss_before'] and s['rss_before'] / 2**20, 1)} | "
                         f"{fmt(s['rss_after'] and s['rss_after'] / 2**20, 1)} | "
                         f"{fmt(s['bytes_per_idle_client'] and s['bytes_per_idle_client'] / 1024, 2)} | "
                         f"{fmt(s['proxy_cpu_ms_per_login'], 3)} | {rm} |")
            L += ["", "While they stay idle:", ""]
        login_col = "| proxy CPU ms per login " if connect else ""
        L += ["| target | tps | latency ms | failed tx / aborted clients | peak server backends "
              "| proxy CPU s per 1000 tx " + login_col + "| tps vs pgbouncer | CPU/tx vs pgbouncer "
              "| tps per round | runs ok | host busy % before |",
              "|---|---:|---:|---:|---:|---:|" + ("---:|" if connect else "")
              + "---:|---:|---:|---:|---:|"]
        b = S.get("pgbouncer")
        for t in targets:
            s = S[t]
            rt = rc = ""
            if t.startswith("corral") and b:
                rt = ratio(s["tps"], b["tps"])
                rc = ratio(s["proxy_cpu_s_per_1k_tx"], b["proxy_cpu_s_per_1k_tx"])
            # -C: one login per transaction, so CPU s per 1000 tx = CPU ms per login
            lc = f"{fmt(s['proxy_cpu_s_per_1k_tx'], 3)} | " if connect else ""
            L.append(f"| {t} | {fmt(s['tps'])} | {fmt(s['latency_ms'], 2)} | "
                     f"{fmt(s['failed_tx'])} / {fmt(s['aborted_clients'])} | {fmt(s['peak_backends'])} | "
                     f"{fmt(s['proxy_cpu_s_per_1k_tx'], 3)} | {lc}{rt} | {rc} | {s['rounds']} | {s['ok']} | "
                     f"{fmt(s['busy_before_pct'])} |")
        notes = [f"- {t}: {s['top_error'][0]} (×{s['top_error'][1]})"
                 for t, s in S.items() if s["top_error"]]
        if notes:
            L += ["", "Most frequent error per target:"] + [n.replace("|", "\\|") for n in notes]
        L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------ main
class Interrupted(BaseException):   # not caught by "except Exception"
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=int(E("BENCH_ROUNDS", "3")))
    ap.add_argument("--duration", type=int, default=int(E("BENCH_DURATION", "10")),
                    help="seconds per pgbench run")
    ap.add_argument("--scenarios", default=E("BENCH_SCENARIOS", ",".join(DEFAULT_SCENARIOS)),
                    help="comma-separated subset of " + ",".join(SCENARIOS))
    ap.add_argument("--targets", default=E("BENCH_TARGETS", ",".join(TARGETS)),
                    help="comma-separated subset of " + ",".join(TARGETS))
    ap.add_argument("--scale", type=int, default=10, help="pgbench -i -s")
    ap.add_argument("--quiet-gate", type=float, default=float(E("BENCH_QUIET_GATE", "40")),
                    help="before each run wait until host CPU busy %% <= this (0 = do not wait)")
    ap.add_argument("--quiet-max", type=float, default=15, help="at most this many s of waiting")
    ap.add_argument("--workdir", default=E("BENCH_WORKDIR"),
                    help="default: a new /tmp/corral-bench.XXXXXX")
    ap.add_argument("--idle-clients", type=int, default=int(E("BENCH_IDLE_CLIENTS", "5000")),
                    help="idle logged-in clients held in the idle5000 scenario (default 5000)")
    ap.add_argument("--tls", action="store_true",
                    help="client TLS on both proxies (sslmode=require); not for direct")
    ap.add_argument("--keep", action="store_true",
                    help="leave PostgreSQL running and its data in WORKDIR/pg at the end")
    a = ap.parse_args()
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    a.targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    for s in a.scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    for t in a.targets:
        if t not in TARGETS:
            ap.error(f"unknown target {t!r}; known: {', '.join(TARGETS)}")
    if a.idle_clients < 1:
        ap.error("--idle-clients must be at least 1")
    if a.tls and any(SCENARIOS[s].get("idle") for s in a.scenarios):
        log("bench: --tls: leaving out idle5000 (tests/bench/idle_crowd.py speaks plain TCP)")
        a.scenarios = [s for s in a.scenarios if not SCENARIOS[s].get("idle")]
    if a.rounds < 1 or a.duration < 1:
        ap.error("--rounds and --duration must be at least 1")
    if not a.scenarios or not a.targets:
        ap.error("no scenarios or no targets")
    need = [f"{PG_BIN}/pgbench", f"{PG_BIN}/psql"]
    need += [PGBOUNCER] if "pgbouncer" in a.targets else []
    need += [CORRAL] if any(t.startswith("corral") for t in a.targets) else []
    for p in need:
        if not os.access(p, os.X_OK):
            sys.exit(f"bench: {p} not found (make deps bin/corral)")

    if a.workdir:
        a.workdir = os.path.abspath(a.workdir)
        os.makedirs(a.workdir, exist_ok=True)
        if os.path.exists(os.path.join(a.workdir, "pg")):
            sys.exit(f"bench: {a.workdir}/pg exists (a cluster of an earlier run?); remove it "
                     "or pick another --workdir")
    else:
        a.workdir = tempfile.mkdtemp(prefix="corral-bench.", dir="/tmp")
    os.chmod(a.workdir, 0o755)           # the cluster's OS user must reach WORKDIR/pg
    os.makedirs(os.path.join(a.workdir, "runs"), exist_ok=True)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    pg = Pg(a.workdir)
    targets, runner, runs, meta = [], None, [], None
    interrupted = False
    started = time.time()
    try:
        log(f"bench: workdir {a.workdir}")
        pg.start()
        log(f"bench: PostgreSQL on 127.0.0.1:{pg.port}")
        pg.su(f"create role {USER} login password '{PASSWORD}' connection limit {ROLE_LIMIT}",
              f"create database {DB} owner {USER}")
        log(f"bench: pgbench -i -s {a.scale} ...")
        t0 = time.monotonic()
        r = subprocess.run([f"{PG_BIN}/pgbench", "-i", "-q", "-s", str(a.scale), "-h", "127.0.0.1",
                            "-p", str(pg.port), "-U", USER, DB], capture_output=True, text=True,
                           env=clean_env(PGPASSWORD=PASSWORD, PGSSLMODE="disable"))
        if r.returncode:
            raise RuntimeError("pgbench -i failed:\n" + r.stderr)
        branches = int(pg.su("select count(*) from pgbench_branches", db=DB))
        if branches != a.scale:
            raise RuntimeError(f"pgbench -i: {branches} branches, expected {a.scale}")
        log(f"  done in {time.monotonic() - t0:.1f} s")
        secret = pg.su(f"select rolpassword from pg_authid where rolname = '{USER}'")
        if not secret.startswith("SCRAM-SHA-256$"):
            raise RuntimeError(f"role {USER} has no SCRAM verifier")
        if a.tls:
            TLS["on"] = True
            TLS["cert"] = os.path.join(a.workdir, "tls.crt")
            TLS["key"] = os.path.join(a.workdir, "tls.key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=localhost", "-keyout", TLS["key"], "-out", TLS["cert"]],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(TLS["key"], 0o600)
            if IS_ROOT:                  # pgbouncer reads them as postgres after -u
                chown_run_as(a.workdir, TLS["cert"], TLS["key"])
        targets = [Target(t, a.workdir, pg, secret) for t in a.targets]
        runner = Runner(a, pg)

        def version(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True,
                                      timeout=10).stdout.splitlines()[0].strip()
            except Exception:
                return "?"
        git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True).stdout.strip() or "?"
        meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "argv": sys.argv[1:],
                "host": f"{os.cpu_count()} CPUs, "
                        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
                        f"load {os.getloadavg()[0]:.2f} at start",
                "versions": f"PostgreSQL {pg.su('show server_version')}, "
                            f"{version([PGBOUNCER, '--version'])}, "
                            f"{version([CORRAL, '--version'])} (git {git})",
                "targets": a.targets, "scenarios": a.scenarios, "rounds": a.rounds,
                "duration": a.duration, "scale": a.scale, "workdir": a.workdir,
                "idle_clients": a.idle_clients}

        def scen_targets(scen):           # idle5000: proxies only
            return [t for t in targets if t.is_proxy or not SCENARIOS[scen].get("idle")]
        total = a.rounds * sum(len(scen_targets(s)) for s in a.scenarios)
        seq = 0
        for scen in a.scenarios:
            tl = scen_targets(scen)
            for rnd in range(1, a.rounds + 1):
                k = (rnd - 1) % max(len(tl), 1)
                for tgt in tl[k:] + tl[:k]:
                    seq += 1
                    try:
                        res = runner.run(scen, tgt, rnd, seq)
                    except Interrupted:
                        raise
                    except Exception as e:   # a failed run costs that run, not the bench
                        runner.kill_pgbench()
                        tgt.stop()
                        res = {"scenario": scen, "target": tgt.name, "round": rnd, "seq": seq,
                               "status": "failed", "tps": None, "error": f"harness: {e}"[:200]}
                    runs.append(res)
                    top = max(res.get("errors", {}).items(), key=lambda kv: kv[1], default=None)
                    log(f"[{seq}/{total}] {scen:8s} r{rnd} {tgt.name:10s} {res['status']:7s} "
                        f"tps={fmt(res.get('tps'))} lat={fmt(res.get('latency_ms'), 2)}ms "
                        f"failed={fmt(res.get('failed_tx'))} aborted={res.get('aborted_clients')} "
                        f"backends={res.get('peak_backends')} "
                        f"cpu/1k={fmt(res.get('proxy_cpu_s_per_1k_tx'), 3)}s "
                        f"busy_before={res.get('busy_before_pct')}%"
                        + (f"  {top[0]}" if top else "") + (f"  {res['error']}" if res.get("error") else "")
                        + (f"  idle={res.get('idle_connected')} KiB/client="
                           f"{fmt(res.get('bytes_per_idle_client') and res['bytes_per_idle_client'] / 1024, 2)}"
                           f" ms/login={fmt(res.get('proxy_cpu_ms_per_login'), 3)}"
                           if "idle_clients" in res else ""))
    except Interrupted as e:
        interrupted = True
        log(f"bench: interrupted ({e}); cleaning up")
    except Exception as e:
        interrupted = True
        log(f"bench: {e}")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)   # let the cleanup finish
        if runner:
            runner.kill_pgbench()
        for t in targets:
            t.stop()
        if not a.keep:
            pg.stop()
            shutil.rmtree(pg.dir, ignore_errors=True)
        else:
            log(f"bench: PostgreSQL left running on 127.0.0.1:{pg.port} "
                f"(stop: scripts/pgtmp.sh stop {pg.dir})")

    if not runs or meta is None:
        sys.exit(1)
    meta["elapsed_s"] = round(time.time() - started)
    text = report(meta, runs)
    print(text, flush=True)
    with open(os.path.join(a.workdir, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.workdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "runs": runs}, f, indent=1)
    log(f"bench: results in {a.workdir}/results.md (raw: results.json, pgbench output: runs/)")
    bad = [r for r in runs if r["status"] == "failed" or r.get("proxy_alive") is False]
    for r in bad:
        log(f"bench: {r['scenario']} r{r['round']} {r['target']}: "
            + ("proxy died during the run" if r.get("proxy_alive") is False else "no result")
            + (f" ({r['error']})" if r.get("error") else ""))
    sys.exit(1 if interrupted or bad else 0)


if __name__ == "__main__":
    main()
