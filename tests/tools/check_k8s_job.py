#!/usr/bin/env python3
"""Schema check of scripts/k8s/replicate-job.yaml, for machines without kubectl (scripts/check-docs.sh runs it).

  check_k8s_job.py FILE [REPLICATE]    check FILE; with REPLICATE, every --option in the container's args must be
                                       one that `REPLICATE --help` lists
  check_k8s_job.py --mutants FILE      check that broken copies of FILE are refused (the check can fail)

The fields checked are those of batch/v1 Job, PodSpec and Container that the file uses or that an Indexed Job of
replicate needs: unknown fields (typos) are refused, types are checked, and the replicate-specific rules hold:
completionMode Indexed, completions == --shards N (or --shard auto/N) >= parallelism, backoffLimitPerIndex with
restartPolicy Never and podReplacementPolicy Failed, a shared --run-id from the Job's name label, credentials from a Secret (never literal keys),
resource requests (and a memory limit not below the request). Prints one line per problem; exit 0 when none.
Needs python3-yaml (scripts/install-deps.sh)."""
import copy
import re
import subprocess
import sys

import yaml

JOB_SPEC = {"completionMode", "completions", "parallelism", "backoffLimit", "backoffLimitPerIndex",
            "maxFailedIndexes", "activeDeadlineSeconds", "ttlSecondsAfterFinished", "template", "podFailurePolicy",
            "suspend", "selector", "manualSelector", "podReplacementPolicy", "successPolicy"}
POD_SPEC = {"restartPolicy", "containers", "initContainers", "volumes", "securityContext", "serviceAccountName",
            "nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets",
            "terminationGracePeriodSeconds", "automountServiceAccountToken", "topologySpreadConstraints"}
CONTAINER = {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "resources", "volumeMounts",
             "securityContext", "workingDir"}
QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
FACTOR = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
          "Ti": 2**40}


def quantity(v):
    m = QUANTITY.match(str(v))
    return float(m.group(1)) * FACTOR[m.group(3)] if m else None


def check(doc, help_text=None):
    errs = []

    def need(cond, msg):
        if not cond:
            errs.append(msg)
        return cond

    def unknown(d, allowed, where):
        for k in d:
            need(k in allowed, "%s: unknown field %r" % (where, k))

    if not need(isinstance(doc, dict), "not a YAML mapping"):
        return errs
    need(doc.get("apiVersion") == "batch/v1", "apiVersion must be batch/v1")
    need(doc.get("kind") == "Job", "kind must be Job")
    meta = doc.get("metadata") or {}
    need(isinstance(meta.get("name"), str) and re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", meta.get("name", "")),
         "metadata.name must be a DNS label")
    unknown(doc, {"apiVersion", "kind", "metadata", "spec"}, "Job")
    spec = doc.get("spec")
    if not need(isinstance(spec, dict), "spec missing"):
        return errs
    unknown(spec, JOB_SPEC, "spec")
    need(spec.get("completionMode") == "Indexed", "spec.completionMode must be Indexed (JOB_COMPLETION_INDEX)")
    for f in ("completions", "parallelism", "backoffLimitPerIndex"):
        need(isinstance(spec.get(f), int) and not isinstance(spec.get(f), bool) and spec.get(f) >= (0 if f ==
             "backoffLimitPerIndex" else 1), "spec.%s must be an integer%s" % (f, "" if f == "backoffLimitPerIndex"
                                                                              else " >= 1"))
    need(spec.get("podReplacementPolicy") == "Failed", "spec.podReplacementPolicy must be Failed: a retried shard takes "
         "over the lease of the pod it replaces, which must have ended")
    n = spec.get("completions")
    need(isinstance(n, int) and isinstance(spec.get("parallelism"), int) and spec["parallelism"] <= n,
         "spec.parallelism must not exceed spec.completions")
    for f in ("maxFailedIndexes", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if f in spec:
            need(isinstance(spec[f], int) and spec[f] >= 0, "spec.%s must be a non-negative integer" % f)
    if "maxFailedIndexes" in spec and isinstance(n, int):
        need(spec["maxFailedIndexes"] <= n, "spec.maxFailedIndexes must not exceed completions")
    pod = (spec.get("template") or {}).get("spec")
    if not need(isinstance(pod, dict), "spec.template.spec missing"):
        return errs
    unknown(pod, POD_SPEC, "pod spec")
    need(pod.get("restartPolicy") == "Never", "restartPolicy must be Never (backoffLimitPerIndex requires it)")
    cs = pod.get("containers")
    if not need(isinstance(cs, list) and len(cs) == 1, "exactly one container"):
        return errs
    c = cs[0]
    unknown(c, CONTAINER, "container")
    need(isinstance(c.get("image"), str) and c["image"], "container.image missing")
    args = c.get("args")
    if not need(isinstance(args, list) and all(isinstance(a, str) for a in args), "container.args: a list of strings"):
        return errs
    env = {e.get("name"): e for e in c.get("env") or []}
    for e in c.get("env") or []:
        need(set(e) <= {"name", "value", "valueFrom"} and ("value" in e) != ("valueFrom" in e),
             "env %r: exactly one of value and valueFrom" % e.get("name"))
        need(e.get("name") not in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") or "valueFrom" in e,
             "env %s: a secret must come from a Secret, not a literal value" % e.get("name"))
    # every $(VAR) in args is defined in env (Kubernetes leaves an undefined one as it is)
    for a in args:
        for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
            need(var in env, "args use $(%s), which env does not define" % var)
    opts = {}
    for a in args:
        if a.startswith("--"):
            k, _, v = a.partition("=")
            opts[k] = v
    shards = opts.get("--shards")
    auto = opts.get("--shard", "")
    need(shards is not None or auto.startswith("auto/"), "args need --shards=N or --shard=auto/N")
    want = shards if shards is not None else auto[5:]
    need(str(n) == want, "--shards (%s) must equal spec.completions (%s)" % (want, n))
    rid = opts.get("--run-id", "")
    need(rid.startswith("$(") and rid[2:-1] in env, "--run-id must come from an env var (the Job's name)")
    src = (env.get(rid[2:-1]) or {}).get("valueFrom", {}) if rid.startswith("$(") else {}
    need(src.get("fieldRef", {}).get("fieldPath") in ("metadata.labels['batch.kubernetes.io/job-name']",
                                                       "metadata.labels['job-name']"),
         "--run-id's variable must be the pod's job-name label, which every pod of the Job shares")
    urls = [a for a in args if a.startswith("s3://")]
    need(len(urls) == 2 and args[-2:] == urls, "args end with the source and target URLs")
    if help_text is not None:
        known = set(re.findall(r"--[a-z][a-z0-9-]*", help_text))
        for k in opts:
            need(k in known, "%s is not an option of replicate --help" % k)
    # credentials: from a Secret, as a mounted file or as secretKeyRef
    vols = {v.get("name"): v for v in pod.get("volumes") or []}
    secret_mounts = [m for m in c.get("volumeMounts") or [] if "secret" in vols.get(m.get("name"), {})]
    for m in c.get("volumeMounts") or []:
        need(m.get("name") in vols, "volumeMount %r names no volume" % m.get("name"))
    secret_env = [e for e in env.values() if "secretKeyRef" in (e.get("valueFrom") or {})]
    cred_file = (env.get("AWS_SHARED_CREDENTIALS_FILE") or {}).get("value", "")
    from_file = any(cred_file.startswith(m.get("mountPath", "//").rstrip("/") + "/") for m in secret_mounts)
    need(from_file or len(secret_env) >= 2, "credentials must come from a Secret (a mounted credentials file, "
                                            "or secretKeyRef)")
    sc = pod.get("securityContext") or {}
    for m in secret_mounts:
        mode = vols[m["name"]]["secret"].get("defaultMode", 0o644)
        readable = mode & 0o004 or (sc.get("fsGroup") is not None and mode & 0o040) or sc.get("runAsUser", 0) == 0
        need(readable, "the Secret's files (defaultMode %o) are not readable by runAsUser %s" %
             (mode, sc.get("runAsUser")))
    res = c.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    need(quantity(req.get("cpu")) is not None, "resources.requests.cpu missing or not a quantity")
    mem = quantity(req.get("memory"))
    need(mem is not None and mem >= 64 * 2**20, "resources.requests.memory below 64Mi (--max-memory's default)")
    if "memory" in lim:
        need(quantity(lim["memory"]) is not None and mem is not None and quantity(lim["memory"]) >= mem,
             "resources.limits.memory below the request")
    return errs


def mutants(doc):
    """Broken copies, each with what breaks it."""
    def m(desc, f):
        d = copy.deepcopy(doc)
        f(d)
        return desc, d
    spec = lambda d: d["spec"]
    ctr = lambda d: d["spec"]["template"]["spec"]["containers"][0]
    return [
        m("no completionMode", lambda d: spec(d).pop("completionMode")),
        m("completionMode NonIndexed", lambda d: spec(d).update(completionMode="NonIndexed")),
        m("parallelism > completions", lambda d: spec(d).update(parallelism=spec(d)["completions"] + 1)),
        m("completions != --shards", lambda d: spec(d).update(completions=spec(d)["completions"] + 1,
                                                              parallelism=spec(d)["completions"] + 1)),
        m("no backoffLimitPerIndex", lambda d: spec(d).pop("backoffLimitPerIndex")),
        m("podReplacementPolicy TerminatingOrFailed", lambda d: spec(d).update(podReplacementPolicy="TerminatingOrFailed")),
        m("restartPolicy OnFailure", lambda d: d["spec"]["template"]["spec"].update(restartPolicy="OnFailure")),
        m("a typo in the spec", lambda d: spec(d).update(completion=4)),
        m("no --run-id", lambda d: ctr(d).update(args=[a for a in ctr(d)["args"] if not a.startswith("--run-id")])),
        m("an unknown option", lambda d: ctr(d)["args"].insert(0, "--shard-count=4")),
        m("a literal secret key", lambda d: ctr(d)["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "x"})),
        m("no Secret volume", lambda d: d["spec"]["template"]["spec"].update(volumes=[
            v for v in d["spec"]["template"]["spec"]["volumes"] if "secret" not in v])),
        m("no resource requests", lambda d: ctr(d).pop("resources")),
        m("memory limit below the request", lambda d: ctr(d)["resources"]["limits"].update(memory="1Mi")),
    ]


def main(argv):
    if len(argv) >= 3 and argv[1] == "--mutants":
        doc = yaml.safe_load(open(argv[2]))
        help_text = subprocess.run([argv[3], "--help"], capture_output=True, text=True).stdout if len(argv) > 3 else None
        bad = 0
        for desc, d in mutants(doc):
            errs = check(d, help_text)
            print("%s %s: %s" % ("refused" if errs else "ACCEPTED", desc, errs[0] if errs else "no problem found"))
            bad += not errs
        return 1 if bad else 0
    if len(argv) < 2:
        print(__doc__)
        return 2
    doc = yaml.safe_load(open(argv[1]))
    help_text = subprocess.run([argv[2], "--help"], capture_output=True, text=True).stdout if len(argv) > 2 else None
    errs = check(doc, help_text)
    for e in errs:
        print(e)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
