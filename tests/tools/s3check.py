#!/usr/bin/python3
"""Checks for tests/integration/*.sh that are easier in Python than in the shell, called through lib.sh
(`s3check SUBCOMMAND ARGS...`). Buckets are read with Debian's awscli, the independent client: /usr/bin/aws, and
for snapshots the same package's library in this process (run it with /usr/bin/python3, the interpreter awscli is
installed for).

  snapshot SIDE ENDPOINT BUCKET[/PREFIX] OUT [DETAIL_KEY...]   list + read a bucket: keys, sizes, ETags, content
                                                         MD5s, and headers/metadata of the DETAIL_KEYs
  compare SRC-SNAPSHOT DST-SNAPSHOT [restored] [content]  same keys, sizes, content, headers, metadata (content:
                                                         keys, sizes and content only)
  locks SIDE ENDPOINT BUCKET                              every version's key, id, Object Lock mode and until (TSV)
  write SIDE ENDPOINT BUCKET < OPS                        puts and deletes as a user makes them (TSV lines on stdin)
  source-ok SNAPSHOT COUNT KEY...                         the standard source as build_source wrote it
  jget FILE EXPR                                          a Python expression over the JSON in FILE (as d)
  versions VERSIONS-JSON KEY LATEST-ETAG [OLDER-ETAG...]  list-object-versions of KEY: exactly these versions
  recorded MANIFEST VERSIONS-JSON                         every object the manifest records is in the target
  recorded-latest MANIFEST VERSIONS-JSON                  every object record names its key's latest version
  manifest-versions STATE RUN                             every object record of RUN names a version
  manifest-version STATE RUN KEY                          prints the version RUN recorded for KEY
  manifest-trailer STATE RUN FIELD VALUE                  the trailer of RUN's manifest has FIELD = VALUE (JSON)
  manifest-unfinished MANIFEST LABEL                      a manifest left by a failed run claims no success
  counts COUNTS-JSON NAME                                 one line: a faultproxy's requests and faults
  fault-kinds COUNTS-JSON...                              the fault kinds served (none, bad-xml, error-200 left out)
  writer-in-target WRITER-LOG LISTING-JSON                every object `s3tool writer` wrote is in the target
  writer-passes SUMMARY MANIFEST WRITER-LOG LISTING-JSON  test_replicate_writer's checks of the passes
  no-delete RGW-LOG...                                    no destructive request from a client but awscli
  json-log FILE [CONDITION...]                            every line is a --log-format json object; conditions
  prom-sample TEXTFILE NAME TARGET                        prints the value of NAME{target="TARGET"}, if any
  notify-reports SUMMARY NOTIFY POSTS ERR HINT CODE HOST RUN   the three failure reports say why and what to do
  post-listener OUT PORTFILE                              an HTTP server: each POST appended to OUT (runs until killed)
  free-port                                               prints a free TCP port on 127.0.0.1 (nothing listens on it)

Exit status 0 = the check passed (or the value was printed), 1 = it failed, 2 = usage. Subcommands that make
several checks print one "ok   - ..." or "FAIL - ..." line per check, the format of lib.sh, which counts them.
"""
import glob, hashlib, inspect, json, math, mimetypes, os, re, subprocess, sys, time, concurrent.futures as cf
from urllib.parse import parse_qs

AWS = "/usr/bin/aws"
HEADERS = ["ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "Expires"]
SRC_ETAG = "replicate-source-etag"


def verdict(ok, msg, evidence=()):
    """One check, in lib.sh's format; up to ten lines of evidence below it."""
    print(("ok   - " if ok else "FAIL - ") + msg)
    for e in list(evidence)[:10]:
        print("    | " + str(e))
    return ok


# ---- buckets: snapshot and compare

def aws(side, endpoint, *args):
    return subprocess.run([AWS, "--profile", side, "--endpoint-url", endpoint, *args],
                          capture_output=True, text=True)


_clients = {}


def s3client(side, endpoint):
    """An S3 client of the library /usr/bin/aws runs (Debian's awscli bundles its botocore), in this process:
    a snapshot starts one interpreter instead of one `aws` (~1 s of CPU) per object it reads."""
    if (side, endpoint) not in _clients:
        from awscli.botocore.session import Session
        import awscli
        session = Session(profile=side)
        session.user_agent_name, session.user_agent_version = "aws-cli", awscli.__version__  # as the CLI says
        _clients[side, endpoint] = session.create_client("s3", endpoint_url=endpoint)
    return _clients[side, endpoint]


def jsonable(v):
    return v.isoformat() if hasattr(v, "isoformat") else v


def snapshot(side, endpoint, url, out, detail):
    """url: BUCKET, or BUCKET/PREFIX: the keys under PREFIX/, named relative to it (as aws s3 sync names them)."""
    t0 = time.time()
    bucket, _, prefix = url.partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    c = s3client(side, endpoint)
    objs = {}
    try:
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents") or []:
                objs[o["Key"][len(prefix):]] = {"size": o["Size"], "etag": o["ETag"].strip('"')}
    except Exception as e:
        print(f"    snapshot: list-objects-v2 {url} failed: {e}")
        return 1
    # A plain (single-part) ETag is the MD5 the server computed over the bytes it stored: take it as the
    # content hash. Multipart ETags say nothing about content: those objects are downloaded and hashed.
    plain = re.compile(r"^[0-9a-f]{32}$")
    for k, o in objs.items():
        if plain.match(o["etag"]) and k not in detail:
            o["md5"] = o["etag"]
            o["got_size"] = o["size"]
    errors = [f"detail key {k!r} is not in s3://{url}" for k in detail if k not in objs]
    fetch = [k for k in objs if "md5" not in objs[k] or k in detail]

    def get(k):
        try:
            g = c.get_object(Bucket=bucket, Key=prefix + k)
            h, n = hashlib.md5(), 0
            for chunk in iter(lambda: g["Body"].read(1 << 20), b""):
                h.update(chunk)
                n += len(chunk)
            return k, (g, h.hexdigest(), n), None
        except Exception as e:
            return k, None, str(e)

    with cf.ThreadPoolExecutor(max_workers=4) as ex:
        for k, res, err in ex.map(get, fetch):
            if res is None:
                errors.append(f"get-object {k!r}: {err}")
                continue
            meta, md5, n = res
            objs[k]["md5"] = md5
            objs[k]["got_size"] = n
            objs[k]["head"] = {h: jsonable(meta.get(h)) for h in HEADERS}
            objs[k]["metadata"] = meta.get("Metadata") or {}
            objs[k]["head_etag"] = (meta.get("ETag") or "").strip('"')
    json.dump({"bucket": url, "side": side, "objects": objs, "errors": errors}, open(out, "w"))
    nbytes = sum(o["size"] for o in objs.values())
    print(f"    snapshot {side}:s3://{url}: {len(objs)} objects, {nbytes} bytes; {len(fetch)} read with "
          f"get-object (multipart ETags, headers, metadata), the rest hashed by the server's MD5 ETag "
          f"({time.time() - t0:.0f}s)")
    for e in errors:
        print(f"    snapshot error: {e}")
    return 1 if errors else 0


def write(side, endpoint, bucket):
    """Changes to BUCKET as a user makes them, with awscli's library in this process, one per line of stdin,
    tab-separated: "put KEY FILE [NAME=VALUE...]" (NAME: a PutObject parameter such as ContentType, CacheControl,
    Expires; ContentType=guess guesses it from the key as aws s3 cp does from a file's name; meta-X for user
    metadata X; PartSize=BYTES uploads in parts of that size, as aws s3 cp does above its threshold) or
    "delete KEY [VERSION]". Stops at the first failure (exit 1, the line on stderr)."""
    c = s3client(side, endpoint)
    for line in sys.stdin.read().splitlines():
        f = line.split("\t")
        try:
            if f[0] == "put":
                key, path, opts, meta, part = f[1], f[2], {}, {}, 0
                for nv in f[3:]:
                    n, v = nv.split("=", 1)
                    if n.startswith("meta-"):
                        meta[n[5:]] = v
                    elif n == "PartSize":
                        part = int(v)
                    elif n == "ContentType" and v == "guess":  # as aws s3 cp guesses it from the file's name
                        guess = mimetypes.guess_type(key)[0]
                        if guess:
                            opts[n] = guess
                    else:
                        opts[n] = v
                if meta:
                    opts["Metadata"] = meta
                if part:
                    up = c.create_multipart_upload(Bucket=bucket, Key=key, **opts)["UploadId"]
                    parts = []
                    with open(path, "rb") as fh:
                        for no, chunk in enumerate(iter(lambda: fh.read(part), b""), 1):
                            r = c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=no, Body=chunk)
                            parts.append({"PartNumber": no, "ETag": r["ETag"]})
                    c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": parts})
                else:
                    with open(path, "rb") as fh:
                        c.put_object(Bucket=bucket, Key=key, Body=fh.read(), **opts)
            elif f[0] == "delete":
                c.delete_object(Bucket=bucket, Key=f[1], **({"VersionId": f[2]} if len(f) > 2 else {}))
            else:
                raise ValueError("unknown operation")
        except Exception as e:
            print(f"write s3://{bucket}: {line!r}: {e}", file=sys.stderr)
            return 1
    return 0


def locks(side, endpoint, bucket):
    """Prints KEY, VERSION, MODE, UNTIL (unix seconds) tab-separated for every version of BUCKET, from a HEAD of
    each (awscli 2.9 cannot parse RGW's GetObjectRetention dates): "none 0" without retention, "error 0" when
    the HEAD failed."""
    c = s3client(side, endpoint)
    try:
        vs = [v for page in c.get_paginator("list_object_versions").paginate(Bucket=bucket)
              for v in page.get("Versions") or []]
    except Exception as e:
        print(f"list-object-versions {bucket} failed: {e}", file=sys.stderr)
        return 1

    def head(v):
        try:
            h = c.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
        except Exception:
            return "error", 0
        until = h.get("ObjectLockRetainUntilDate")
        return h.get("ObjectLockMode") or "none", int(until.timestamp()) if until else 0

    with cf.ThreadPoolExecutor(max_workers=4) as ex:
        for v, (mode, until) in zip(vs, ex.map(head, vs)):
            print(f"{v['Key']}\t{v['VersionId']}\t{mode}\t{until}")
    return 0


def compare(src_file, dst_file, restored=False, content_only=False):
    """restored: DST is a restore, not a backup: it must carry none of the tool's bookkeeping metadata, and an
    ETag may differ from the source's (another part layout) as long as the content MD5 is the same.
    content_only: keys, sizes and content MD5s only (no headers, metadata or recorded ETags)."""
    s, t = json.load(open(src_file)), json.load(open(dst_file))
    so = s["objects"]
    to = {k: v for k, v in t["objects"].items() if not k.startswith(".replicate/")}
    problems = []
    missing = sorted(set(so) - set(to))
    extra = sorted(set(to) - set(so))
    if missing:
        problems.append(f"{len(missing)} source keys missing in the target: {missing[:10]!r}")
    if extra:
        problems.append(f"{len(extra)} target keys not in the source: {extra[:10]!r}")
    both = sorted(set(so) & set(to))
    n_size = n_md5 = n_meta = 0
    for k in both:
        a, b = so[k], to[k]
        if a["size"] != b["size"] or a.get("got_size") != b.get("got_size") or a.get("got_size") != a["size"]:
            problems.append(f"size of {k!r}: source listed {a['size']} read {a.get('got_size')}, "
                            f"target listed {b['size']} read {b.get('got_size')}")
            continue
        n_size += 1
        if a.get("md5") is None or a.get("md5") != b.get("md5"):
            problems.append(f"content MD5 of {k!r}: source {a.get('md5')} target {b.get('md5')}")
            continue
        n_md5 += 1
        if "head" in a and "head" in b and not content_only:
            bad = False
            for h in a["head"]:
                if a["head"][h] != b["head"][h]:
                    problems.append(f"{h} of {k!r}: source {a['head'][h]!r} target {b['head'][h]!r}")
                    bad = True
            am = {x: y for x, y in a["metadata"].items() if x != SRC_ETAG}
            bm = {x: y for x, y in b["metadata"].items() if x != SRC_ETAG}
            if am != bm:
                problems.append(f"user metadata of {k!r}: source {am!r} target {bm!r}")
                bad = True
            rec = b["metadata"].get(SRC_ETAG)
            if restored:
                if any(x.startswith("replicate-") for x in b["metadata"]):
                    problems.append(f"{k!r}: the restore wrote the tool's bookkeeping metadata {b['metadata']!r}")
                    bad = True
            elif rec is not None and rec.strip('"') != a["etag"]:
                problems.append(f"{k!r}: target x-amz-meta-{SRC_ETAG} is {rec!r}, the source ETag is {a['etag']!r}")
                bad = True
            if not restored and rec is None and b["etag"] != a["etag"]:
                problems.append(f"{k!r}: the target ETag {b['etag']} differs from the source's {a['etag']} and "
                                f"x-amz-meta-{SRC_ETAG} is missing")
                bad = True
            if not bad:
                n_meta += 1
    for e in s.get("errors", []) + t.get("errors", []):
        problems.append("snapshot: " + e)
    print(f"    compared s3://{s['bucket']} with s3://{t['bucket']}: {len(so)} source keys, {len(to)} target keys "
          f"(.replicate/ ignored); {n_size} same size, {n_md5} same content MD5, {n_meta} with all headers and "
          f"metadata compared equal")
    recorded = sorted(k for k in both if SRC_ETAG in to[k].get("metadata", {}))
    if recorded:
        print(f"    x-amz-meta-{SRC_ETAG} on: " + ", ".join(f"{k} (= source ETag {so[k]['etag']}; target ETag "
                                                              f"{to[k]['etag']})" for k in recorded))
    for p in problems[:40]:
        print("    " + p)
    if len(problems) > 40:
        print(f"    ... and {len(problems) - 40} more")
    return 1 if problems else 0



def source_ok(snap, count, *keys):
    """The source holds COUNT objects, among them every KEY exactly as written, and the 0-byte object."""
    o = json.load(open(snap))["objects"]
    missing = [k for k in keys if k not in o]
    zero = o.get("empty/zero-bytes.bin", {}).get("size")
    print(f"    source: {len(o)} objects; named keys missing: {missing}; empty/zero-bytes.bin has {zero} bytes")
    return 0 if len(o) == int(count) and not missing and zero == 0 else 1


# ---- JSON values and versions

def jget(path, expr):
    """Prints the value (JSON for lists, dicts, booleans and null, Python's str otherwise); nothing on error."""
    try:
        d = json.load(open(path))
        v = eval(expr, {"d": d})
    except Exception:
        return 1
    print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
    return 0


def versions(path, key, latest, *older):
    """KEY has exactly the versions LATEST (the latest) and OLDER (ETags), and no delete marker."""
    d = json.loads(open(path).read() or "{}")
    vs = [(v["ETag"].strip('"'), v["IsLatest"]) for v in d.get("Versions") or [] if v["Key"] == key]
    dm = [m for m in d.get("DeleteMarkers") or [] if m["Key"] == key]
    print(f"    list-object-versions {key}: {vs}; delete markers: {len(dm)}")
    want = [(latest, True)] + [(e, False) for e in older]
    return 0 if sorted(vs) == sorted(want) and not dm else 1


# ---- manifests

def manifest_objects(manifest):
    """The object records of a manifest (lines that do not parse are skipped: a killed run's last line)."""
    for line in open(manifest):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("t") == "object":
            yield r


def recorded(manifest, versions_json):
    """Every object the manifest records as copied exists in the target (list-object-versions output) as the
    recorded version with the recorded size: a copy that did not happen must never be recorded."""
    have = {}
    for v in (json.load(open(versions_json)).get("Versions") or []):
        have[(v["Key"], v["VersionId"])] = v["Size"]
        have.setdefault((v["Key"], None), v["Size"])
    n = bad = 0
    for r in manifest_objects(manifest):
        n += 1
        k = (r.get("target_key") or r["key"], r.get("version_id"))
        if have.get(k) != r["size"]:
            bad += 1
            if bad <= 5:
                print(f"recorded but not in the target: {k[0]} version {k[1]} size {r['size']} (target: {have.get(k)})")
    print(f"{n} records checked")
    return 1 if bad or not n else 0


def recorded_latest(manifest, versions_json):
    """Every object record of the manifest names its key's latest version in the target (list-object-versions
    output), with that version's ETag: the versions a run learns (CopyObject replies, bulk listings, HEADs) are
    the ones it wrote. Only for a target nothing else wrote since the run."""
    latest = {}
    for v in (json.load(open(versions_json)).get("Versions") or []):
        if v.get("IsLatest"):
            latest[v["Key"]] = (v["VersionId"], v["ETag"].strip('"'))
    n = bad = 0
    for r in manifest_objects(manifest):
        n += 1
        key = r.get("target_key") or r["key"]
        want = latest.get(key)
        got = (r.get("version_id"), r.get("target_etag") or r.get("etag"))
        if want != got:
            bad += 1
            if bad <= 5:
                print(f"{key}: recorded version {got[0]} ETag {got[1]}, the target's latest is {want}")
    print(f"{n} records checked, {bad} not the latest version")
    return 1 if bad or not n else 0


def run_manifest(state, run):
    """The local manifest of RUN in the state directory STATE."""
    return glob.glob(state + "/*/manifests/" + run + ".jsonl")[-1]


def manifest_versions(state, run):
    """Every object record of RUN's manifest names a version (no-change objects too)."""
    recs = [json.loads(l) for l in open(run_manifest(state, run))]
    objs = [r for r in recs if r["t"] == "object"]
    dels = [r for r in recs if r["t"] == "deleted"]
    print(f"    {len(objs)} object records, {sum(1 for o in objs if not o.get('version_id'))} without version, "
          f"{len(dels)} deleted records")
    return 0 if objs and all(o.get("version_id") for o in objs) else 1


def manifest_version(state, run, key):
    """Prints the version RUN's manifest records for KEY."""
    for l in open(run_manifest(state, run)):
        r = json.loads(l)
        if r["t"] == "object" and r["key"] == key:
            print(r["version_id"])
    return 0


def manifest_trailer(state, run, field, value):
    """The trailer of RUN's manifest has FIELD equal to VALUE (JSON: 2, "ok", null)."""
    t = [json.loads(l) for l in open(run_manifest(state, run)) if '"trailer"' in l][-1]
    print("    trailer:", t)
    return 0 if t.get(field) == json.loads(value) else 1


def manifest_unfinished(manifest, label):
    """A local manifest left by a run that hit a full disk: only its last line may be cut short (the write that
    hit ENOSPC; the reader skips it), and it has no trailer or a readable one that does not say ok."""
    lines = open(manifest, "rb").read().split(b"\n")
    records = trailer = 0
    for i, raw in enumerate(lines):
        if not raw:
            continue
        try:
            r = json.loads(raw)
        except ValueError:
            if any(lines[i + 1:]):
                verdict(False, f"{label}: line {i + 1} of the local manifest is corrupt in the middle of the file")
                return 1
            print(f"    {label}: the local manifest's last line is cut short ({len(raw)} bytes)")
            continue
        if r.get("t") == "object":
            records += 1
        if r.get("t") == "trailer":
            trailer = r
    if trailer and trailer.get("result") == "ok":
        verdict(False, f"{label}: the local manifest's trailer says ok")
        return 1
    verdict(True, f"{label}: the local manifest ({records} object records) has "
            + (f"a readable trailer saying {trailer.get('result')}" if trailer else "no trailer (an unfinished run)"))
    return 0


# ---- faultproxy counts

def counts(path, name):
    d = json.load(open(path))
    f = {k: v for k, v in d["faults"].items() if k != "none" and v}
    n = sum(f.values())
    print(f"  {name}: {d['requests']} requests ({', '.join(f'{k} {v}' for k, v in d['methods'].items())}); "
          f"{n} faulted ({100.0 * n / max(d['requests'], 1):.1f}%): {', '.join(f'{k} {v}' for k, v in f.items()) or '-'}")
    return 0


def fault_kinds(*paths):
    seen = {}
    for f in paths:
        for k, v in json.load(open(f))["faults"].items():
            seen[k] = seen.get(k, 0) + v
    print(" ".join(sorted(k for k, v in seen.items() if v and k not in ("none", "bad-xml", "error-200"))))
    return 0


# ---- s3tool writer: its log has "KEY MD5" for every write RGW confirmed; keys are live/<unix second>-<n>

def writer_in_target(log, listing):
    """Every object the writer wrote is in the target (list-objects-v2 --query 'Contents[].[Key,ETag]') with
    the same MD5."""
    w = dict(l.split() for l in open(log) if l.strip())
    t = {k: e.strip('"') for k, e in (json.load(open(listing)) or [])}
    miss = [k for k in w if k not in t]
    diff = [k for k in w if k in t and t[k] != w[k]]
    print(f"  writer wrote {len(w)}; missing {len(miss)} {miss[:5]}; different {len(diff)} {diff[:5]}")
    return 1 if miss or diff or not w else 0


def writer_passes(summary_json, manifest, log, listing):
    """A run with the writer running: at least two passes; the final one copied only writer keys that arrived
    during the previous pass, few compared with pass 1; every object written before the last pass started is
    in the target (list-objects-v2 output) with its MD5. Pass start times come from the manifest."""
    summary = json.load(open(summary_json))
    passes, copied_in = {}, {}
    for line in open(manifest):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("t") == "pass":
            passes[r["pass"]] = r
        elif r.get("t") == "object":
            copied_in.setdefault(r["pass"], []).append(r["key"])
    writes = [l.split() for l in open(log) if len(l.split()) == 2]
    target = {c["Key"]: c["ETag"].strip('"') for c in (json.load(open(listing)) or {}).get("Contents") or []}

    def sec(key):  # live/<second>-<n>
        return int(key[len("live/"):].split("-")[0])

    details = summary.get("pass_details") or []
    for p in details:
        n = p["pass"]
        st = passes.get(n, {}).get("started")
        print(f"    pass {n}: started {st}, {p['duration_seconds']}s, listed {p['listed']}, copied {p['copied']}, "
              f"unchanged {p['unchanged']}")
    n = summary.get("passes", 0)
    verdict(n >= 2 and len(details) == n and sorted(passes) == list(range(1, n + 1)),
            f"the run made at least two passes ({n}; {len(passes)} pass lines in the manifest)")
    if n >= 2 and len(details) == n and n in passes and n - 1 in passes:
        first, last = details[0]["copied"], details[-1]["copied"]
        verdict(first >= 2000, f"pass 1 copied the 2,000 objects and what the writer had added ({first})")
        verdict(last * 4 < first, f"the final pass {n} copied few objects compared with pass 1 ({last} vs {first})")
        mine = copied_in.get(n, [])
        verdict(len(mine) == last, f"the manifest records {len(mine)} copies in pass {n}, the summary {last}")
        nonwriter = [k for k in mine if not k.startswith("live/")]
        verdict(not nonwriter, f"every key the final pass copied is a writer key (live/...): "
                f"{len(mine) - len(nonwriter)} of {len(mine)}", nonwriter)
        prev_start = passes[n - 1]["started"]
        early = [k for k in mine if k.startswith("live/") and sec(k) < math.floor(prev_start) - 1]
        verdict(not early, f"no key the final pass copied was written before pass {n - 1} started (at "
                f"{prev_start:.1f}; keys' seconds >= {math.floor(prev_start) - 1})", early)
        last_start = passes[n]["started"]
        cutoff = math.floor(last_start) - 1
        before = [(k, m) for k, m in writes if sec(k) < cutoff]
        missing = [k for k, m in before if k not in target]
        differ = [f"{k}: wrote MD5 {m}, target ETag {target[k]}" for k, m in before if k in target and target[k] != m]
        verdict(len(before) > 0 and not missing and not differ,
                f"all {len(before)} objects the writer wrote before the last pass started (second < {cutoff}; it "
                f"wrote {len(writes)} in all) are in the target with their MD5: {len(missing)} missing, "
                f"{len(differ)} different", missing + differ)
    return 0


# ---- RGW request logs (one "beast:" line per HTTP request; see scripts/rgw.sh)

# 127.0.0.1 - tester [26/Nov/2026:16:07:04.957 +0000] "DELETE /b/k?x=y HTTP/1.1" 204 0 - "aws-cli/2.9.19 ..." - latency=
BEAST_LINE = re.compile(r' beast: \S+ \S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d+) (.*)$')


def no_delete(*logs):
    """No request that destroys data, from any client but awscli (the tests use it to play a user deleting a
    source object or tampering with a target): DELETE on anything except AbortMultipartUpload (uploadId=),
    POST ?delete (DeleteObjects), ?lifecycle (a rule could expire objects). One check per log."""
    fails = 0
    for path in logs:
        try:
            f = open(path, "rb")
        except OSError as e:
            verdict(False, f"cannot read the RGW log {path}: {e}")
            fails += 1
            continue
        total = awscli = others = aborts = awscli_deletes = unparsed = 0
        bad = []
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if " beast: " not in line:
                continue
            m = BEAST_LINE.search(line)
            if not m:
                unparsed += 1
                continue
            total += 1
            method, uri, status, rest = m.groups()
            path_part, _, query = uri.partition("?")
            params = parse_qs(query, keep_blank_values=True)
            destructive = (method == "DELETE" and "uploadId" not in params) or \
                          (method == "POST" and "delete" in params) or "lifecycle" in params
            if "aws-cli/" in rest:
                awscli += 1
                if destructive:
                    awscli_deletes += 1
                continue
            others += 1
            if method == "DELETE" and "uploadId" in params:
                aborts += 1
            if destructive:
                bad.append(line[line.index(" beast: ") + 8:])
        f.close()
        print(f"    {path}: {total} requests: {awscli} from awscli (of them {awscli_deletes} deletes by the tests "
              f"themselves, not counted), {others} from other clients (replicate, s3tool, ...) with {aborts} "
              f"AbortMultipartUpload; {unparsed} beast lines not understood")
        if total == 0 or others == 0:
            verdict(False, f"{path} holds no request from replicate or s3tool: this check would see nothing")
            fails += 1
        elif bad:
            print(f"FAIL - {len(bad)} destructive requests (DELETE / POST ?delete / ?lifecycle) from a client other "
                  f"than awscli in {path}:")
            for b in bad[:20]:
                print("    | " + b)
            fails += 1
        else:
            verdict(True, f"no DELETE (other than AbortMultipartUpload), DeleteObjects or lifecycle request from a "
                    f"client other than awscli in {path}")
        if unparsed:
            verdict(False, f"{unparsed} request lines in {path} did not match the expected format")
            fails += 1
    return 1 if fails else 0


# ---- replicate's other outputs: --log-format json, the metrics textfile, notifications

def json_log(path, *conds):
    """Every line of PATH is a JSON object with time, level and message; each condition (a Python expression
    over the list of objects, as L) must hold."""
    L, bad = [], []
    raw = open(path, "rb").read()
    for i, line in enumerate(raw.split(b"\n")[:-1] if raw.endswith(b"\n") else raw.split(b"\n")):
        try:
            o = json.loads(line.decode("utf-8"))
            if not isinstance(o, dict) or not all(isinstance(o.get(k), str) for k in ("time", "level", "message")):
                raise ValueError("not an object with time, level and message")
            if o["level"] not in ("error", "warn", "info", "debug", "trace"):
                raise ValueError("level " + o["level"])
            L.append(o)
        except Exception as e:
            bad.append(f"line {i + 1}: {e}: {line[:200]!r}")
    events = {}
    for o in L:
        events[o.get("event", "-")] = events.get(o.get("event", "-"), 0) + 1
    print(f"    {len(L)} JSON lines on stderr, {len(bad)} that are not; events: {events}")
    for b in bad[:5]:
        print("    " + b)
    failed = [c for c in conds if not eval(c, {"L": L})]
    for c in failed:
        print("    condition failed: " + c)
    return 1 if bad or failed or (not raw and not conds) else 0


def prom_sample(path, name, target):
    """Prints the value of the sample NAME{target="TARGET"} in a Prometheus textfile (nothing when absent)."""
    for line in open(path):
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', line)
        if m and m.group(1) == name and (m.group(2) or "") == '{target="%s"}' % target:
            v = float(m.group(3))
            print(int(v) if v == int(v) else v)
            break
    return 0


def notify_reports(summ, notify, posts, err, hint, code, host, run):
    """A failed run's --json summary, the summary --notify-cmd read on stdin and the text --notify-url posted
    (the last line of POSTS, from post-listener) carry the error ERR, the hint HINT, the host, the run id and
    the exit code CODE."""
    code = int(code)
    fails = []

    def summary(label, d):
        for k in ("message", "error", "hint", "host", "exit_meaning", "run_id"):
            if not isinstance(d.get(k), str) or not d.get(k):
                fails.append(f"{label}: {k} is {d.get(k)!r}")
        if err not in (d.get("message") or "") or err not in (d.get("error") or ""):
            fails.append(f"{label}: message/error {d.get('message')!r} lack {err!r}")
        if hint not in (d.get("hint") or ""):
            fails.append(f"{label}: hint {d.get('hint')!r} lacks {hint!r}")
        if d.get("host") != host:
            fails.append(f"{label}: host {d.get('host')!r} is not {host!r}")
        if d.get("run_id") != run:
            fails.append(f"{label}: run_id {d.get('run_id')!r} is not {run!r}")
        if d.get("exit_code") != code:
            fails.append(f"{label}: exit_code {d.get('exit_code')!r}")
        print(f"    {label}: message={d.get('message')!r} hint={d.get('hint')!r} exit_meaning={d.get('exit_meaning')!r}")

    summary("--json summary", json.load(open(summ)))
    summary("--notify-cmd stdin", json.load(open(notify)))
    lines = open(posts).read().splitlines()
    if not lines:
        fails.append("--notify-url: nothing was posted")
    else:
        p = json.loads(lines[-1])
        text = json.loads(p["body"])["text"]
        print(f"    --notify-url text: {text}")
        if p["content_type"] != "application/json":
            fails.append(f"--notify-url content type {p['content_type']}")
        for want in (err, hint, host, run, f"exit {code}", "What to do"):
            if want not in text:
                fails.append(f"--notify-url text lacks {want!r}")
    for f in fails:
        print("    " + f)
    return 1 if fails else 0


def post_listener(out, portfile):
    """An HTTP server on 127.0.0.1 (a free port, written to PORTFILE once it listens): every POST is appended
    to OUT as one JSON line (path, content type, body) and answered 200. Runs until killed."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with open(out, "a") as f:
                f.write(json.dumps({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                    "body": body.decode("utf-8", "replace")}) + "\n")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    open(portfile + ".tmp", "w").write(str(server.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago: a connection to it is refused."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    return 0


COMMANDS = {
    "snapshot": lambda side, endpoint, bucket, out, *detail: snapshot(side, endpoint, bucket, out, set(detail)),
    "compare": lambda src, dst, *how: compare(src, dst, "restored" in how, "content" in how),
    "locks": locks,
    "write": write,
    "source-ok": source_ok,
    "jget": jget,
    "versions": versions,
    "recorded": recorded,
    "recorded-latest": recorded_latest,
    "manifest-versions": manifest_versions,
    "manifest-version": manifest_version,
    "manifest-trailer": manifest_trailer,
    "manifest-unfinished": manifest_unfinished,
    "counts": counts,
    "fault-kinds": fault_kinds,
    "writer-in-target": writer_in_target,
    "writer-passes": writer_passes,
    "no-delete": no_delete,
    "json-log": json_log,
    "prom-sample": prom_sample,
    "notify-reports": notify_reports,
    "post-listener": post_listener,
    "free-port": free_port,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print("usage: s3check.py SUBCOMMAND ARGS...\n" + __doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    fn, args = COMMANDS[sys.argv[1]], sys.argv[2:]
    try:
        inspect.signature(fn).bind(*args)
    except TypeError as e:  # the wrong number of arguments
        print(f"s3check {sys.argv[1]}: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(fn(*args))
