"""Run a command; poll the CPU time of it and of its child processes; print wall, CPU per process, load (JSON).

Used for the whole-demo measurements in docs/benchmarks.md (Linux: reads /proc)::

    cd TREE && MON_OUT=/tmp/demo.out PYTHONPATH=$PWD python benchmarks/proc_time.py python -m pctce_cli demo --out /tmp/fresh -q

``busiest`` process: the parent's CPU plus its busiest child's, which is what the wall time of
the run would be on idle cores when the children run side by side.
"""
import os, subprocess, sys, time, json
TCK = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TCK
    except OSError:
        return None
def children(pid):
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(x) for x in open(f"/proc/{pid}/task/{t}/children").read().split()]
        except OSError:
            pass
    return out
load0 = open("/proc/loadavg").read().split()[:3]
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=open(os.environ.get("MON_OUT", "/dev/null"), "w"), stderr=subprocess.DEVNULL)
seen = {}
parent = 0.0
while p.poll() is None:
    c = cpu(p.pid)
    if c is not None:
        parent = c
    for k in children(p.pid):
        v = cpu(k)
        if v is not None:
            seen[k] = v
    time.sleep(0.1)
wall = time.perf_counter() - t0
ru = __import__("resource").getrusage(__import__("resource").RUSAGE_CHILDREN)
load1 = open("/proc/loadavg").read().split()[:3]
workers = sorted(seen.values(), reverse=True)
print(json.dumps({"wall": round(wall, 1), "cpu_total": round(ru.ru_utime + ru.ru_stime, 1), "user": round(ru.ru_utime, 1), "sys": round(ru.ru_stime, 1),
                  "parent_cpu_last_seen": parent, "workers_cpu": workers, "critical_path_cpu": round(parent + (workers[0] if workers else 0), 1),
                  "load_start": load0, "load_end": load1, "rc": p.returncode}))
