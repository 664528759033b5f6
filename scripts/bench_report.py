#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (`make bench`): measure one command, check a target against its source,
and turn the results into a markdown table (and the README's performance section).

  bench_report.py measure --out FILE.json [--server-pids FILE]... [--stdout F] [--stderr F] -- CMD...
      Runs CMD under `/usr/bin/time -f '%e %U %S %M'`, samples VmHWM of CMD and its descendants from
      /proc every 20 ms as a cross-check of %M, and reads utime+stime of the server processes listed in
      the pid files (lines "PID NAME"; only ceph-osd and radosgw are counted) before and after.
  bench_report.py list --endpoint URL --profile NAME --bucket B [--prefix P] --out FILE.json
      Lists a bucket with `/usr/bin/aws s3api list-objects-v2` into [[key, size, etag], ...].
  bench_report.py check --src-list FILE [--src-list FILE]... [--src-live PREFIX] --src-endpoint URL
                        --src-profile P --src-bucket B --dst-endpoint URL --dst-profile P --dst-bucket B
                        [--md5-cache FILE] [--sample N] [--sample-offset I] --out FILE.json
      The target must hold every source key (the target's .replicate/ prefix ignored) with the same size,
      and the same ETag where both ETags are plain MD5s. Objects with a multipart ETag on either side are
      checked by size, and N of them (rotated by --sample-offset) by an MD5 of their content, streamed
      from both sides with `aws s3 cp ... -`. Exit 0 when the target is right.
  bench_report.py record --results FILE.jsonl --measure M.json [--check C.json] [--ok-rc 0,4]
                         [--tool-json STDOUT-FILE] KEY=VALUE...
      Appends one result line: the measurement, the check and the labels; ok = exit code accepted, no
      failed objects in the tool's JSON summary (replicate) and the check passed.
  bench_report.py synth-record --results FILE.jsonl --measure M.json --before C0.json --after C1.json
                               [--tool-json STDOUT-FILE] [--expect-copied N] [--expect-heads N] KEY=VALUE...
      One result line of the listing-scale bench (scripts/bench_scale.sh): the measurement, the synthetic
      endpoint's counts before and after (LIST requests, its own CPU, target_differs) and the labels; ok = exit
      code accepted, the target matches the source, and replicate copied exactly N objects (N >= 0) with
      exactly --expect-heads HEAD requests of objects outside .replicate/ (when >= 0).
  bench_report.py synth-report --results FILE.jsonl --out FILE.md
      The listing-scale table alone (scripts/bench_scale.sh run by itself).
  bench_report.py report --results FILE.jsonl --meta FILE.json --out FILE.md [--readme README.md]
      Medians per (corpus, mode, tool, phase), ratios against the best peer, the memory-scaling table.
"""
import argparse
import hashlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

AWS = "/usr/bin/aws"
PEERS_PREFIX = ("rclone", "aws")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- measure
def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _vmhwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _server_pids(files):
    pids = []
    for fn in files:
        try:
            with open(fn) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2 and parts[1].startswith(("osd.", "client.rgw", "synth")):
                        pids.append(int(parts[0]))
        except OSError:
            pass
    return pids


def _cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def cmd_measure(a):
    spids = _server_pids(a.server_pids)
    before = {p: _cpu_ticks(p) for p in spids}
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    tfile = a.out + ".time"
    so = open(a.stdout or os.devnull, "wb")
    se = open(a.stderr or os.devnull, "wb")
    t0 = time.monotonic()
    # Own session: a TERM to us (the bench being stopped) is passed on to every process under it.
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile] + a.command, stdout=so, stderr=se,
                            start_new_session=True)

    def stop(signum, frame):
        # The whole session: `timeout` moves itself and the tool into a process group of their own.
        for p in _descendants(proc.pid):
            try:
                os.kill(p, signal.SIGTERM)
            except OSError:
                pass
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            pass
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    hwm = 0
    samples = 0
    while proc.poll() is None:
        for p in _descendants(proc.pid)[1:]:  # not /usr/bin/time itself
            hwm = max(hwm, _vmhwm_kb(p))
        samples += 1
        time.sleep(0.02)
    wall_py = time.monotonic() - t0
    after = {p: _cpu_ticks(p) for p in spids}
    server = sum(after[p] - before[p] for p in spids if before[p] is not None and after[p] is not None)
    so.close()
    se.close()
    rc = proc.returncode
    res = {"rc": rc, "wall_py": round(wall_py, 3), "vmhwm_kb": hwm, "samples": samples,
           "server_cpu": round(server / CLK_TCK, 2), "server_pids": len(spids), "load1": load}
    try:
        with open(tfile) as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        # On a non-zero exit, time writes "Command exited with non-zero status N" first.
        e, u, s, m = lines[-1].split()
        res.update(wall=float(e), user=float(u), sys=float(s), time_maxrss_kb=int(m))
    except (OSError, ValueError, IndexError):
        res.update(wall=round(wall_py, 2), user=None, sys=None, time_maxrss_kb=None)
    # Peak RSS: GNU time's %M (ru_maxrss), unless it looks inflated next to the sampled VmHWM (the sampler
    # can only miss a peak reached in the last 20 ms, so VmHWM is a lower bound).
    m = res["time_maxrss_kb"]
    if m and hwm and m > 1.25 * hwm + 4096:
        res["rss_kb"], res["rss_src"] = hwm, "vmhwm"
    else:
        res["rss_kb"], res["rss_src"] = (m or hwm), "time"
    with open(a.out, "w") as f:
        json.dump(res, f)
    print(json.dumps(res))
    return 0


# ---------------------------------------------------------------- list / check
def aws_list(endpoint, profile, bucket, prefix=None):
    cmd = [AWS, "--profile", profile, "--endpoint-url", endpoint, "s3api", "list-objects-v2", "--bucket", bucket,
           "--output", "json", "--query", "Contents[].[Key,Size,ETag]"]
    if prefix:
        cmd += ["--prefix", prefix]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    rows = json.loads(out or b"null") or []
    return [[k, int(s), e.strip('"')] for k, s, e in rows]


def cmd_list(a):
    rows = aws_list(a.endpoint, a.profile, a.bucket, a.prefix)
    with open(a.out, "w") as f:
        json.dump(rows, f)
    print(f"listed {len(rows)} objects in s3://{a.bucket}/{a.prefix or ''}")
    return 0


def is_md5(etag):
    return bool(re.fullmatch(r"[0-9a-f]{32}", etag))


def content_md5(endpoint, profile, bucket, key):
    p = subprocess.Popen([AWS, "--profile", profile, "--endpoint-url", endpoint, "s3", "cp",
                          f"s3://{bucket}/{key}", "-", "--only-show-errors"], stdout=subprocess.PIPE)
    h, n = hashlib.md5(), 0
    while True:
        b = p.stdout.read(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    if p.wait() != 0:
        return None, n
    return h.hexdigest(), n


def cmd_check(a):
    src = {}
    for fn in a.src_list:
        with open(fn) as f:
            for k, s, e in json.load(f):
                src[k] = (s, e)
    live_objects = live_bytes = 0
    for p in a.src_live or []:
        for k, s, e in aws_list(a.src_endpoint, a.src_profile, a.src_bucket, p):
            src[k] = (s, e)
            live_objects += 1
            live_bytes += s
    dst = {k: (s, e) for k, s, e in aws_list(a.dst_endpoint, a.dst_profile, a.dst_bucket)
           if not k.startswith(".replicate/")}
    missing, badsize, badetag, multipart = [], [], [], []
    for k, (s, e) in sorted(src.items()):
        if k not in dst:
            missing.append(k)
            continue
        ds, de = dst[k]
        if ds != s:
            badsize.append(k)
        elif is_md5(e) and is_md5(de):
            if e != de:
                badetag.append(k)
        else:
            multipart.append(k)
    extra = sorted(set(dst) - set(src))
    res = {"source": len(src), "source_bytes": sum(v[0] for v in src.values()), "live_objects": live_objects,
           "live_bytes": live_bytes, "target": len(dst), "missing": len(missing), "size_mismatch": len(badsize),
           "etag_mismatch": len(badetag), "size_only": len(multipart), "extra": len(extra),
           "content_checked": 0, "content_mismatch": 0,
           "examples": (missing + badsize + badetag)[:5]}
    if multipart and a.sample > 0 and not (missing or badsize or badetag):
        cache = {}
        if a.md5_cache and os.path.exists(a.md5_cache):
            with open(a.md5_cache) as f:
                cache = json.load(f)
        for i in range(min(a.sample, len(multipart))):
            k = multipart[(a.sample_offset + i) % len(multipart)]
            ck = f"{a.src_bucket}/{k}/{src[k][1]}"
            if ck not in cache:
                cache[ck], _ = content_md5(a.src_endpoint, a.src_profile, a.src_bucket, k)
            d, _ = content_md5(a.dst_endpoint, a.dst_profile, a.dst_bucket, k)
            res["content_checked"] += 1
            if cache[ck] is None or d != cache[ck]:
                res["content_mismatch"] += 1
                res["examples"].append(k)
        if a.md5_cache:
            with open(a.md5_cache, "w") as f:
                json.dump(cache, f)
    ok = not (missing or badsize or badetag or res["content_mismatch"])
    res["ok"] = ok
    if not ok:
        why = []
        for name in ("missing", "size_mismatch", "etag_mismatch", "content_mismatch"):
            if res[name]:
                why.append(f"{res[name]} {name.replace('_', ' ')}")
        res["why"] = ", ".join(why)
    with open(a.out, "w") as f:
        json.dump(res, f)
    print(json.dumps(res))
    return 0 if ok else 1


# ---------------------------------------------------------------- record
def _val(v):
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def cmd_record(a):
    """One result line: the measurement, the check and the labels; ok = exit code accepted and check passed."""
    with open(a.measure) as f:
        rec = json.load(f)
    rec.update({k: _val(v) for k, v in (kv.split("=", 1) for kv in a.fields)})
    why = []
    ok_rcs = [int(x) for x in a.ok_rc.split(",")]
    if rec["rc"] not in ok_rcs:
        why.append(f"exit {rec['rc']}")
    if a.tool_json:
        try:
            with open(a.tool_json) as f:
                tj = json.load(f)
            rec["tool_copied"] = tj.get("objects_copied")
            rec["tool_result"] = tj.get("result")
            if tj.get("objects_failed"):
                why.append(f"{tj['objects_failed']} objects failed")
        except (OSError, ValueError):
            why.append("no JSON summary")
    chk = {}
    if a.check:
        try:
            with open(a.check) as f:
                chk = json.load(f)
        except (OSError, ValueError):
            chk = {"ok": False, "why": "check did not run"}
        rec["check"] = {k: v for k, v in chk.items() if k not in ("ok", "why")}
        if not chk.get("ok"):
            why.append("check: " + chk.get("why", "?"))
    rec["corpus_objects"] = chk.get("source", 0)
    if rec.get("phase") in ("full", "restore"):
        rec["objects"], rec["bytes"] = chk.get("source", 0), chk.get("source_bytes", 0)
    elif rec.get("phase") == "delta":
        rec["objects"], rec["bytes"] = chk.get("live_objects", 0), chk.get("live_bytes", 0)
    else:
        rec.setdefault("objects", 0)
        rec.setdefault("bytes", 0)
    rec["ok"] = not why
    if why:
        rec["why"] = "; ".join(why)
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    cpu = (rec.get("user") or 0) + (rec.get("sys") or 0)
    print(f"  {rec.get('phase', ''):9} wall {rec['wall']:7.2f}s  cpu {cpu:6.2f}s  rss {rec['rss_kb'] / 1024:6.1f} MiB"
          f"  server {rec['server_cpu']:6.1f}s  load {rec['load1']:.1f}  "
          + ("ok" if rec["ok"] else "FAILED: " + rec["why"]))
    return 0


# ---------------------------------------------------------------- the listing-scale bench
def cmd_synth_record(a):
    with open(a.measure) as f:
        rec = json.load(f)
    with open(a.before) as f:
        c0 = json.load(f)
    with open(a.after) as f:
        c1 = json.load(f)
    rec.update({k: _val(v) for k, v in (kv.split("=", 1) for kv in a.fields)})
    rec["lists"] = c1["lists"] - c0["lists"]
    rec["requests"] = c1["requests"] - c0["requests"]
    rec["heads"] = c1["data_heads"] - c0["data_heads"]  # HEADs of objects (not of .replicate/)
    rec["endpoint_cpu"] = rec.pop("server_cpu")
    rec["target_differs"], rec["target_extra"] = c1["target_differs"], c1["target_extra"]
    why = []
    if rec["rc"] not in ((0, 4) if a.tool_json else (0,)):
        why.append(f"exit {rec['rc']}")
    if a.tool_json:
        try:
            with open(a.tool_json) as f:
                tj = json.load(f)
            rec["copied"] = tj.get("objects_copied")
            if tj.get("objects_failed"):
                why.append(f"{tj['objects_failed']} objects failed")
            if a.expect_copied >= 0 and rec["copied"] != a.expect_copied:
                why.append(f"copied {rec['copied']}, {a.expect_copied} changed")
        except (OSError, ValueError):
            why.append("no JSON summary")
    else:
        rec["copied"] = c1["kinds"]["copy"] + c1["kinds"]["put"] - c0["kinds"]["copy"] - c0["kinds"]["put"]
    if a.expect_heads >= 0 and rec["heads"] != a.expect_heads:
        why.append(f"{rec['heads']} HEAD requests, {a.expect_heads} expected")
    if rec["target_differs"] or rec["target_extra"]:
        why.append(f"target: {rec['target_differs']} keys differ from the source, {rec['target_extra']} extra")
    rec["ok"] = not why
    if why:
        rec["why"] = "; ".join(why)
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    cpu = (rec.get("user") or 0) + (rec.get("sys") or 0)
    print(f"  {rec.get('tool', ''):9} {rec.get('phase', ''):9} wall {rec['wall']:7.2f}s  cpu {cpu:6.2f}s  "
          f"rss {rec['rss_kb'] / 1024:7.1f} MiB  lists {rec['lists']:6}  heads {rec['heads']:7}  endpoint {rec['endpoint_cpu']:6.1f}s  "
          + ("ok" if rec["ok"] else "FAILED: " + rec["why"]))
    return 0 if rec["ok"] else 1


def synth_table(rows):
    sc = [r for r in rows if r.get("kind") == "synth"]
    if not sc:
        return []
    L = ["| keys | latency ms | tool | phase | wall s | client CPU s | CPU ms / 1,000 keys | peak RSS MiB "
         "| LIST requests | endpoint CPU s | copied | check |", "|" + "---|" * 12]
    for r in sc:
        cpu = (r["user"] or 0) + (r["sys"] or 0) if r.get("user") is not None else None
        per = cpu * 1000 / (r["keys"] / 1000) if cpu is not None and r.get("keys") else None
        tool = "**replicate**" if r["tool"] == "replicate" else r["tool"]
        L.append(f"| {r['keys']:,} | {r['latency_ms']} | {tool} | {r['phase']} | {fmt(r['wall'])} | {fmt(cpu)} "
                 f"| {fmt(per, 3)} | {fmt(r['rss_kb'] / 1024 if r.get('rss_kb') else None, 1)} | {r['lists']:,} "
                 f"| {fmt(r['endpoint_cpu'])} | {r.get('copied', '–')} "
                 f"| {'ok' if r['ok'] else '**FAILED** ' + r.get('why', '')} |")
    def pick(keys, lat, phase):
        for r in sc:
            if r["tool"] == "replicate" and r["keys"] == keys and r["latency_ms"] == lat and r["phase"] == phase \
                    and r["ok"]:
                return r
        return None
    goals = []
    nc = pick(1000000, 20, "no-change")
    if nc:
        goals.append(f"no-change over 1M keys with 20 ms per request: {nc['wall']:.1f} s (goal: under 10 s; "
                     f"{'met' if nc['wall'] < 10 else 'not met'})")
    small, big = pick(1000000, 0, "no-change"), pick(10000000, 0, "no-change")
    if small and big and small.get("rss_kb") and big.get("rss_kb"):
        ratio = big["rss_kb"] / small["rss_kb"]
        goals.append(f"peak RSS of a no-change pass at 10M keys {ratio:.2f}x the one at 1M (goal: within 1.5x; "
                     f"{'met' if ratio <= 1.5 else 'not met'})")
        c = [(x["user"] or 0) + (x["sys"] or 0) for x in (small, big)]
        flat = (c[1] / 10) / c[0] if c[0] else None
        if flat:
            goals.append(f"client CPU per key at 10M {flat:.2f}x the one at 1M (goal: flat)")
    if goals:
        L += ["", "Against the goals of issue 17: " + "; ".join(goals) + "."]
    return L


def cmd_synth_report(a):
    rows = load_results(a.results)
    md = "\n".join(synth_table(rows))
    with open(a.out, "w") as f:
        f.write("# replicate listing-scale benchmark\n\n" + md + "\n")
    print(md)
    return 0


# ---------------------------------------------------------------- report
PHASES = ["full", "no-change", "delta", "restore"]
TOOL_ORDER = ["replicate", "rclone-64", "rclone-default", "aws-64", "aws-default"]
TOOL_LABEL = {
    "replicate": "replicate",
    "rclone-64": "rclone --transfers 64 --checkers 64 --checksum",
    "rclone-default": "rclone (defaults)",
    "aws-64": "aws s3 sync (64 requests)",
    "aws-default": "aws s3 sync (defaults)",
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    if x is None:
        return "–"
    return f"{x:.{nd}f}"


def load_results(fn):
    rows = []
    with open(fn) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def aggregate(rows):
    """Group measured phases by (corpus, mode, tool, phase): medians over the repeats that passed."""
    groups = {}
    for r in rows:
        if r.get("kind") != "phase":
            continue
        groups.setdefault((r["corpus"], r["mode"], r["tool"], r["phase"]), []).append(r)
    agg = {}
    for key, rs in groups.items():
        good = [r for r in rs if r["ok"]]
        bad = [r for r in rs if not r["ok"]]
        use = good if good else rs
        cpu = [(r["user"] or 0) + (r["sys"] or 0) if r.get("user") is not None else None for r in use]
        agg[key] = {
            "n": len(rs), "failed": len(bad), "why": "; ".join(sorted({r.get("why", "") for r in bad})),
            "wall": med([r["wall"] for r in use]), "cpu": med(cpu),
            "rss_mib": med([r["rss_kb"] / 1024 if r.get("rss_kb") else None for r in use]),
            "hwm_mib": med([r["vmhwm_kb"] / 1024 if r.get("vmhwm_kb") else None for r in use]),
            "server": med([r["server_cpu"] for r in use]),
            "objects": use[0]["objects"], "bytes": use[0]["bytes"], "note": use[0].get("note", ""),
            "rss_src": sorted({r.get("rss_src", "time") for r in use}),
        }
    return agg


def tool_key(t):
    return (TOOL_ORDER.index(t) if t in TOOL_ORDER else len(TOOL_ORDER), t)


def phase_table(agg, corpus, meta):
    lines = []
    modes = [m for m in ["same", "cross"] if any(k[0] == corpus and k[1] == m for k in agg)]
    hdr = ("| mode | phase | tool | wall s | × best peer | client CPU s | CPU ms/object | peak RSS MiB "
           "| server CPU s | × server floor | MB/s | check |")
    lines += [hdr, "|" + "---|" * 12]
    try:
        ncpu = int(meta.get("nproc") or 0)
    except ValueError:
        ncpu = 0
    for mode in modes:
        for phase in PHASES:
            tools = sorted({k[2] for k in agg if k[0] == corpus and k[1] == mode and k[3] == phase}, key=tool_key)
            peer_walls = [agg[(corpus, mode, t, phase)]["wall"] for t in tools
                          if t.startswith(PEERS_PREFIX) and not agg[(corpus, mode, t, phase)]["failed"]
                          and agg[(corpus, mode, t, phase)]["wall"]]
            best = min(peer_walls) if peer_walls else None
            for t in tools:
                g = agg[(corpus, mode, t, phase)]
                failed = g["failed"]
                ratio = f"{g['wall'] / best:.2f}x" if best and g["wall"] and not failed else "–"
                cpu_obj = (g["cpu"] * 1000 / g["objects"]) if g["cpu"] is not None and g["objects"] else None
                mbs = (g["bytes"] / 1e6 / g["wall"]) if phase != "no-change" and g["wall"] and g["bytes"] else None
                label = TOOL_LABEL.get(t, t) + (f" ({g['note']})" if g["note"] else "")
                if t == "replicate":
                    label = f"**{label}**"
                check = "ok" if not failed else f"**FAILED** {failed}/{g['n']}: {g['why']}"
                # the server floor: the servers' own CPU spread over the cores, the least wall any client can have
                floor = g["server"] / ncpu if ncpu and g["server"] else None
                xfloor = f"{g['wall'] / floor:.2f}x" if floor and g["wall"] and phase != "no-change" else "–"
                lines.append(f"| {mode} | {phase} | {label} | {fmt(g['wall'])} | {ratio} | {fmt(g['cpu'])} "
                             f"| {fmt(cpu_obj, 3)} | {fmt(g['rss_mib'], 1)} | {fmt(g['server'], 1)} "
                             f"| {xfloor} | {fmt(mbs, 1)} | {check} |")
    return lines


def scale_table(rows, agg, meta):
    sc = [r for r in rows if r.get("kind") == "scale"]
    base = agg.get(("small", "same", "replicate", "no-change"))
    if not sc and not base:
        return []
    lines = ["| objects | phase | wall s | client CPU s | peak RSS MiB | check |", "|---|---|---|---|---|---|"]
    if base:
        lines.append(f"| {meta.get('small_count', '?'):,} | no-change (small corpus, same, median) | "
                     f"{fmt(base['wall'])} | {fmt(base['cpu'])} | {fmt(base['rss_mib'], 1)} | "
                     f"{'ok' if not base['failed'] else '**FAILED**'} |")
    for r in sc:
        cpu = (r["user"] or 0) + (r["sys"] or 0) if r.get("user") is not None else None
        lines.append(f"| {r.get('corpus_objects', 0):,} | {r['phase']} | {fmt(r['wall'])} | {fmt(cpu)} | "
                     f"{fmt(r['rss_kb'] / 1024 if r.get('rss_kb') else None, 1)} | "
                     f"{'ok' if r['ok'] else '**FAILED** ' + r.get('why', '')} |")
    big = [r for r in sc if r["phase"] == "no-change" and r["ok"] and r.get("rss_kb")]
    if base and base["rss_mib"] and big:
        lines.append("")
        lines.append(f"Peak RSS of a no-change pass at {big[0].get('corpus_objects', 0):,} objects is "
                     f"{big[0]['rss_kb'] / 1024 / base['rss_mib']:.2f}x the peak at {meta.get('small_count', '?'):,}.")
    return lines


def summary_lines(agg, meta):
    """replicate against the best passing peer, per small-corpus phase and the large corpus."""
    out = []
    for corpus in ["small", "large", "mixed"]:
        for mode in ["same", "cross"]:
            for phase in PHASES:
                r = agg.get((corpus, mode, "replicate", phase))
                if not r:
                    continue
                peers = [(t, g) for (c, m, t, p), g in agg.items()
                         if c == corpus and m == mode and p == phase and t.startswith(PEERS_PREFIX)
                         and not g["failed"] and g["wall"]]
                if not peers:
                    continue
                bt, bg = min(peers, key=lambda x: x[1]["wall"])
                cpu_r = (r["cpu"] / bg["cpu"]) if r["cpu"] is not None and bg["cpu"] else None
                rss_best = min(g["rss_mib"] for _, g in peers if g["rss_mib"])
                st = "FAILED" if r["failed"] else f"{r['wall'] / bg['wall']:.2f}x wall"
                out.append(f"| {corpus} | {mode} | {phase} | {TOOL_LABEL.get(bt, bt)} | {fmt(bg['wall'])} | "
                           f"{fmt(r['wall'])} | {st} | {fmt(cpu_r)}x | {r['rss_mib'] / rss_best:.2f}x |")
    if not out:
        return []
    return (["| corpus | mode | phase | fastest peer | its wall s | replicate wall s | replicate vs peer "
             "| client CPU vs that peer | peak RSS vs the leanest peer |", "|" + "---|" * 9] + out)


def build_markdown(rows, meta):
    agg = aggregate(rows)
    L = []
    L.append(f"Run {meta.get('date', '?')} on {meta.get('nproc', '?')} CPUs, {meta.get('mem', '?')} RAM, "
             f"{meta.get('rgw', '?')} (two single-OSD memstore clusters on the same host), "
             f"replicate {meta.get('replicate', '?')} ({meta.get('commit', '?')}), {meta.get('rclone', '?')}, "
             f"{meta.get('aws', '?')}.")
    L.append("")
    L.append(f"Load average (1/5/15 min) at the start: {meta.get('load_start', '?')}; at the end: "
             f"{meta.get('load_end', '?')}. The clients, both RGW instances and other people's test runs share "
             f"the CPUs, so the figures are noisy; small-corpus phases are medians of "
             f"{meta.get('repeat', '?')} runs (of {meta.get('repeat_tools', 'every tool')}), the others single "
             f"runs. Total bench time: "
             f"{meta.get('elapsed', '?')}.")
    L.append("")
    L.append("Columns: wall = elapsed seconds; × best peer = wall divided by the fastest rclone/aws variant "
             "that passed the check; client CPU = user+sys of the tool; CPU ms/object = client CPU per object "
             "copied (– when nothing is to be copied); peak RSS = the tool's maximum resident set "
             "(GNU time %M, cross-checked against /proc VmHWM); server CPU = utime+stime of the radosgw and "
             "ceph-osd processes of both instances during the phase; × server floor = wall divided by server CPU / "
             "cores (the least wall any client can reach when the servers share the cores); MB/s = bytes copied "
             "/ wall. `same`: source "
             "and target bucket on RGW A with one set of keys (server-side copy possible); `cross`: target on "
             "RGW B with other keys (data passes through the client). Each phase is checked with "
             "`aws s3api list-objects-v2` on both sides (every source key, size, plain-MD5 ETags; multipart "
             "objects by size and a streamed MD5 of one object per check); a run that fails it is FAILED, "
             "not a result.")
    L.append("")
    desc = meta.get("corpora", {})
    for corpus in ["small", "large", "mixed"]:
        if not any(k[0] == corpus for k in agg):
            continue
        L.append(f"**{corpus}**: {desc.get(corpus, '')}")
        L.append("")
        L += phase_table(agg, corpus, meta)
        L.append("")
    s = summary_lines(agg, meta)
    if s:
        L.append("**replicate against the fastest peer** (medians as above):")
        L.append("")
        L += s
        L.append("")
    sc = scale_table(rows, agg, meta)
    if sc:
        L.append("**Memory scaling** (replicate, same endpoint; a no-change pass lists both sides completely):")
        L.append("")
        L += sc
        L.append("")
    st = synth_table(rows)
    if st:
        L.append("**Listing scale** (scripts/bench_scale.sh: replicate against build/tools/synth_s3, a synthetic "
                 "endpoint serving the keys as source and replica target; the endpoint's own CPU is shown apart):")
        L.append("")
        L += st
        L.append("")
    notes = list(meta.get("notes", []))
    measured = [r for r in rows if r.get("kind") in ("phase", "scale")]
    loads = sorted(r["load1"] for r in measured if r.get("load1") is not None)
    if loads:
        notes.append(f"The 1-minute load average at the start of the measured phases ranged from {loads[0]:.1f} "
                     f"to {loads[-1]:.1f} (median {statistics.median(loads):.1f}) on {meta.get('nproc', '?')} CPUs.")
    pairs = [(r["time_maxrss_kb"], r["vmhwm_kb"]) for r in measured if r.get("time_maxrss_kb") and r.get("vmhwm_kb")]
    if pairs:
        dev = max(abs(m - h) / h for m, h in pairs)
        swapped = sum(1 for r in measured if r.get("rss_src") == "vmhwm")
        notes.append(f"Peak RSS: GNU time's %M and VmHWM sampled from /proc every 20 ms differed by at most "
                     f"{dev * 100:.0f}% over {len(pairs)} measurements"
                     + (f"; {swapped} looked inflated and use VmHWM." if swapped else "; %M is used."))
    if notes:
        L.append("Notes: " + " ".join(notes))
        L.append("")
    return "\n".join(L)


def replace_readme(readme, body):
    with open(readme) as f:
        text = f.read()
    section = "## Performance\n\n" + body.rstrip() + "\n"
    m = re.search(r"^## Performance[ \t]*\n", text, re.M)
    if m:
        nxt = re.search(r"^## ", text[m.end():], re.M)
        end = m.end() + nxt.start() if nxt else len(text)
        text = text[:m.start()] + section + ("\n" + text[end:] if nxt else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(readme, "w") as f:
        f.write(text)


def cmd_report(a):
    rows = load_results(a.results)
    with open(a.meta) as f:
        meta = json.load(f)
    md = build_markdown(rows, meta)
    with open(a.out, "w") as f:
        f.write("# replicate benchmark\n\n" + md + "\n")
    print(md)
    if a.readme:
        intro = ("Measured by `make bench` (scripts/bench.sh): two local Ceph RGW instances, the corpora below, "
                 "and each tool's full copy into a fresh versioned bucket, a no-change pass, and a pass after "
                 "100 objects were added. Knobs: BENCH_SMALL, BENCH_LARGE_MB, BENCH_REPEAT, BENCH_REPEAT_TOOLS, BENCH_CORPORA, "
                 "BENCH_TOOLS, BENCH_MODES, BENCH_SCALE (0 skips the 100,000-object memory test), BENCH_SCALE_KEYS "
                 "(the listing-scale bench against a synthetic endpoint, scripts/bench_scale.sh: default \"1000000 "
                 "10000000\"; 0 skips) and BENCH_SCALE_LATENCY (ms per request, default \"0 20\"; counts over 5M keys "
                 "at 0 ms only, and only with 12 GB free in $TMPDIR); "
                 "BENCH_UPDATE_README=1 rewrites this section. The full table also lands in "
                 "build/bench-results.md.\n\n")
        replace_readme(a.readme, intro + md)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--out", required=True)
    m.add_argument("--server-pids", action="append", default=[])
    m.add_argument("--stdout")
    m.add_argument("--stderr")
    m.add_argument("command", nargs=argparse.REMAINDER)
    li = sub.add_parser("list")
    for o in ("--endpoint", "--profile", "--bucket", "--out"):
        li.add_argument(o, required=True)
    li.add_argument("--prefix")
    c = sub.add_parser("check")
    c.add_argument("--src-list", action="append", default=[])
    c.add_argument("--src-live", action="append")
    for o in ("--src-endpoint", "--src-profile", "--src-bucket", "--dst-endpoint", "--dst-profile",
              "--dst-bucket", "--out"):
        c.add_argument(o, required=True)
    c.add_argument("--md5-cache")
    c.add_argument("--sample", type=int, default=1)
    c.add_argument("--sample-offset", type=int, default=0)
    rc = sub.add_parser("record")
    rc.add_argument("--results", required=True)
    rc.add_argument("--measure", required=True)
    rc.add_argument("--check")
    rc.add_argument("--ok-rc", default="0")
    rc.add_argument("--tool-json")
    rc.add_argument("fields", nargs="*")
    r = sub.add_parser("report")
    r.add_argument("--results", required=True)
    r.add_argument("--meta", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--readme")
    sr = sub.add_parser("synth-record")
    for o in ("--results", "--measure", "--before", "--after"):
        sr.add_argument(o, required=True)
    sr.add_argument("--tool-json")
    sr.add_argument("--expect-copied", type=int, default=-1)
    sr.add_argument("--expect-heads", type=int, default=-1)
    sr.add_argument("fields", nargs="*")
    sp = sub.add_parser("synth-report")
    sp.add_argument("--results", required=True)
    sp.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "measure":
        if a.command and a.command[0] == "--":
            a.command = a.command[1:]
        return cmd_measure(a)
    return {"list": cmd_list, "check": cmd_check, "record": cmd_record, "report": cmd_report,
            "synth-record": cmd_synth_record, "synth-report": cmd_synth_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
