"""The resumable queue: runs the plan's runs in order, each in OUT/runs/NAME, and records them.

A run is done when its final checkpoint verifies (`sprout inspect`, exit 0) and OUT/runs/NAME/
done.json (its metrics summary and the losses on the tune and report parts of val) has been
written, atomically, with the run's config hash. A finished run is never run again. An
interrupted one continues with `--resume auto` from its own newest good checkpoint; a branch
that has none yet starts from its parent's final checkpoint. OUT/manifest.jsonl has one line
per attempt start and end (run, config hash, commit, times, wall seconds, status), and
OUT/decisions.json the choices made on the tune split."""
import datetime
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from . import analysis
from .plan import Plan, config_hash, dump_config, estimate_flops

ASSUMED_FLOPS_PER_S = 138e9  # 2 ranks on the 2-core machine (docs/results/depth-growth.md)


def git_commit(root):
    try:
        c = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(["git", "-C", root, "diff-index", "--quiet", "HEAD", "--"],
                           capture_output=True).returncode
    return c + (" (with uncommitted changes)" if dirty else "")


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_metrics(path):
    """Step lines and growth events of a metrics.jsonl. A restart re-logs the steps after the
    checkpoint it resumed from, so a restart event drops the lines after its step."""
    steps, events = [], []
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return steps, events
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        ev = r.get("event")
        if ev == "restart":
            steps = [s for s in steps if s["step"] <= r["step"]]
            events = [e for e in events if e["step"] < r["step"]]
        elif ev == "growth":
            events.append(r)
        elif ev is None and "step" in r:
            steps.append(r)
    return steps, events


def parse_eval(text):
    """`sprout eval` prints one line of key/value pairs, `val_loss X set val[all] windows N
    tokens M ...`, with `val_loss_se X` where it reports one."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if not f or f[0] != "val_loss":
            continue
        for k, v in zip(f[0::2], f[1::2]):
            if k in ("val_loss", "val_loss_se", "windows", "tokens"):
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
    return out


class Queue:
    def __init__(self, out, plan_path, root, sprout, mpirun, data, own_src=None):
        self.out, self.plan_path, self.root = out, plan_path, root
        self.sprout, self.mpirun, self.data = sprout, mpirun, data
        self.own_src = own_src or os.path.join(root, "build/sprout")  # copied for `sprout: own`
        self.data_hashes = data.get("hashes", {})
        self.manifest = os.path.join(out, "manifest.jsonl")
        self.child = None
        self.stop = 0
        self.verified = set()
        self.walls = {}
        self.commit = read_json(os.path.join(out, "commit.json"), {}).get("commit", "unknown")
        # evaluation may use its own binary (OUT/sprout-eval.bin, --eval-sprout): a queue whose
        # training binary is frozen can take an evaluation fix without retraining anything
        ev = read_json(os.path.join(out, "eval-commit.json"))
        ebin = os.path.join(out, "sprout-eval.bin")
        self.sprout_eval = ebin if ev and os.path.exists(ebin) else sprout
        self.eval_commit = ev["commit"] if ev and os.path.exists(ebin) else self.commit

    # ---- paths and state ----
    def rundir(self, name):
        return os.path.join(self.out, "runs", name)

    def plan(self):
        return Plan(self.plan_path, self.root, self.data, self.decisions())

    def decisions(self):
        return read_json(os.path.join(self.out, "decisions.json"), {})

    def binary(self, run, make=False):
        """(train binary, eval binary, commit, eval commit) of a run: the queue's, or for an arm
        the plan marks `sprout: own` (a method added after the queue froze its binary) a copy of
        build/sprout taken when that arm first runs, OUT/arms/METHOD.bin with its commit in
        METHOD.json, that trains, verifies and evaluates every run of the arm (--sprout, when
        given, instead of build/sprout)."""
        if not run.own:
            return self.sprout, self.sprout_eval, self.commit, self.eval_commit
        b = os.path.join(self.out, "arms", f"{run.own}.bin")
        info = read_json(b[:-4] + ".json")
        if (info is None or not os.path.exists(b)) and make:
            os.makedirs(os.path.dirname(b), exist_ok=True)
            shutil.copy2(self.own_src, b + ".tmp")
            os.replace(b + ".tmp", b)
            info = {"commit": git_commit(self.root), "time": now()}
            write_json(b[:-4] + ".json", info)
        commit = info["commit"] if info else "(not made yet)"
        return b, b, commit, commit

    def own_arms(self):
        """{method: commit} of the arms with their own binary made so far"""
        out = {}
        for p in sorted(glob.glob(os.path.join(self.out, "arms", "*.json"))):
            out[os.path.basename(p)[:-5]] = read_json(p, {}).get("commit", "unknown")
        return out

    def final_ckpt(self, run):
        return os.path.join(self.rundir(run.name), "ckpt", f"step_{run.steps:08d}.h5")

    def verifies(self, path, binary=None):
        """`sprout inspect` exits 0 (remembered for an unchanged file)."""
        binary = binary or self.sprout
        try:
            key = (path, os.stat(path).st_mtime_ns)
        except OSError:
            return False
        if key not in self.verified:
            if not os.path.exists(binary):
                return False
            ok = subprocess.run([binary, "inspect", path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode == 0
            if not ok:
                return False
            self.verified.add(key)
        return True

    def hash(self, plan, run, memo=None):
        memo = {} if memo is None else memo
        if run.name not in memo:
            ph = self.hash(plan, plan.runs[run.parent], memo) if run.parent else None
            memo[run.name] = config_hash(run.cfg, ph, self.data_hashes)
        return memo[run.name]

    def done(self, plan, run, verify=True):
        """The run's done.json when it is done with this config, else None."""
        d = read_json(os.path.join(self.rundir(run.name), "done.json"))
        if not d or d.get("hash") != self.hash(plan, run):
            return None
        if verify and not self.verifies(self.final_ckpt(run), self.binary(run)[0]):
            return None
        w = self.wallclock(self.final_ckpt(run))
        if w is not None:
            d["elapsed_s"] = d.get("wall_s")
            d["wall_s"] = w
        return d

    def wallclock(self, path):
        """The run's own wall time from its final checkpoint (/train wallclock): the time of every
        step, evaluation and checkpoint up to the end, counting an interrupted attempt only up to
        the checkpoint it resumed from, so that an interruption does not count against an arm.
        The attempts' elapsed time stays in the manifest. None without h5py or the attribute."""
        try:
            key = (path, os.stat(path).st_mtime_ns)
        except OSError:
            return None
        if key not in self.walls:
            try:
                import h5py
                with h5py.File(path, "r") as f:
                    self.walls[key] = float(f["train"].attrs["wallclock"])
            except (ImportError, OSError, KeyError):
                self.walls[key] = None
        return self.walls[key]

    def attempts(self):
        out = []
        try:
            for line in open(self.manifest):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        except OSError:
            pass
        return out

    def log(self, **rec):
        with open(self.manifest, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def state(self, plan):
        """name -> done | failed | rejected | pending | waiting | left, plus the done records."""
        last = {}
        for a in self.attempts():
            if a.get("event") == "end":
                last[(a["run"], a["hash"])] = a
        st, recs = {}, {}
        for name in plan.order:
            r = plan.runs[name]
            if r.pending:
                st[name] = "pending"
                continue
            h = self.hash(plan, r)
            d = self.done(plan, r)
            if d:
                st[name], recs[name] = "done", d
                continue
            end = last.get((name, h))
            if end and end["status"] == "rejected" and end.get("commit") == self.binary(r)[2]:
                st[name] = "rejected"  # the same binary would refuse it again
            elif end and end["status"] == "failed":
                st[name] = "failed"  # tried again by the next start of the queue
            elif r.parent and st.get(r.parent) != "done":
                st[name] = "waiting"
            else:
                st[name] = "left"
        return st, recs

    # ---- running one run ----
    def own_resume(self, d, binary):
        for p in sorted(glob.glob(os.path.join(d, "ckpt", "step_*.h5")), reverse=True):
            if self.verifies(p, binary):
                return True
        return False

    def execute(self, plan, run):
        d = self.rundir(run.name)
        h = self.hash(plan, run)
        old = read_json(os.path.join(d, "done.json"))
        if old and old.get("hash") != h:  # the plan changed under a finished run: keep it aside
            shutil.move(d, f"{d}.old-{old['hash'][:8]}")
        os.makedirs(d, exist_ok=True)
        cfg = dict(run.cfg)
        cfg["run"] = dict(cfg.get("run", {}), out=d)
        cfg_path = os.path.join(d, "config.yaml")
        dump_config(cfg, cfg_path, f"# {run.name}: written by jobs/experiments/compare.sh "
                                   f"(stage {run.stage}, plan {os.path.relpath(self.plan_path, self.root)})\n")
        args = []
        binary, _, commit, _ = self.binary(run, make=True)
        if self.own_resume(d, binary):
            args = ["--resume", "auto"]
        elif run.parent:
            args = ["--resume", self.final_ckpt(plan.runs[run.parent])]
        cmd = self.mpirun + ["-n", str(plan.p["ranks"]), binary, "train", cfg_path] + args
        t0 = time.time()
        self.log(event="start", run=run.name, hash=h, commit=commit, time=now(),
                 resume=args[1] if args else None)
        write_json(os.path.join(self.out, "current.json"),
                   {"run": run.name, "harness_pid": os.getpid(), "time": now()})
        env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"),
                   HDF5_USE_FILE_LOCKING="FALSE")
        if os.getuid() == 0:
            env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        with open(os.path.join(d, "train.log"), "a") as logf:
            logf.write(f"== {now()} {' '.join(cmd)}\n")
            logf.flush()
            self.child = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
            cur = read_json(os.path.join(self.out, "current.json"), {})
            cur["mpirun_pid"] = self.child.pid
            write_json(os.path.join(self.out, "current.json"), cur)
            rc = self.child.wait()
            self.child = None
        train_s = time.time() - t0
        status, rec = "failed", None
        if rc == 0 and self.verifies(self.final_ckpt(run), binary):
            rec = self.summarize(plan, run, h)
            status = "done" if rec else "failed"
        elif rc == 2:
            status = "rejected"  # sprout refused the config (e.g. an operator it does not have)
        elif rc == 3 or self.stop:
            status = "interrupted"
        wall = time.time() - t0
        if rec:
            prev = sum(a.get("wall_s", 0) for a in self.attempts()
                       if a.get("event") == "end" and a["run"] == run.name and a["hash"] == h)
            rec["wall_s"] = prev + wall
            rec["train_s_last_attempt"] = train_s
            write_json(os.path.join(d, "done.json"), rec)
        why = None
        if status in ("failed", "rejected"):
            tail = open(os.path.join(d, "train.log")).read().splitlines()[-30:]
            errs = [t for t in tail if "error" in t.lower()]
            why = (errs or tail or ["?"])[-1]
        self.log(event="end", run=run.name, hash=h, commit=commit, time=now(),
                 wall_s=round(wall, 3), status=status, exit=rc, why=why)
        try:
            os.remove(os.path.join(self.out, "current.json"))
        except OSError:
            pass
        return status, why

    def evaluate(self, ckpt, path, binary):
        p = subprocess.run([binary, "eval", ckpt, "--data", path], capture_output=True,
                           text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        if p.returncode:
            return None
        return parse_eval(p.stdout)

    def summarize(self, plan, run, h):
        d = self.rundir(run.name)
        steps, events = read_metrics(os.path.join(d, "metrics.jsonl"))
        if not steps or steps[-1]["step"] != run.steps:
            return None
        ck = self.final_ckpt(run)
        ev = self.evaluate_all(ck, run)
        if ev is None:
            return None
        own = [s for s in steps if "tok_per_s" in s]
        tps = sum(s["tok_per_s"] for s in own) / len(own) if own else None
        parent_flops = 0.0
        if run.parent:
            pd = read_json(os.path.join(self.rundir(run.parent), "done.json"), {})
            parent_flops = pd.get("flops", 0.0)
        rec = {"name": run.name, "hash": h, "stage": run.stage, "arm": run.arm, "seed": run.seed,
               "tau": run.tau, "parent": run.parent, "commit": self.binary(run)[2], "end": now(),
               "steps": run.steps, "tokens": steps[-1]["tokens"], "flops": steps[-1]["flops"],
               "own_flops": steps[-1]["flops"] - parent_flops, "tok_per_s": tps,
               "train_loss": steps[-1]["loss"], "curve": [[s["step"], s["flops"], s["val_loss"]]
                                                          for s in steps if "val_loss" in s],
               "events": [{k: e.get(k) for k in ("step", "op", "factor", "loss_before",
                                                  "loss_after", "n_layer_before", "n_layer_after",
                                                  "d_model_before", "d_model_after")}
                          for e in events]}
        rec.update(ev)
        return rec

    EVAL_SPLITS = ("tune", "report", "val")

    def evaluate_all(self, ckpt, run):
        """loss_S, loss_S_se for every split S and eval_commit, or None if an evaluation failed."""
        _, ebin, _, ecommit = self.binary(run)
        out = {"eval_commit": ecommit}
        for k in self.EVAL_SPLITS:
            v = self.evaluate(ckpt, self.data[k], ebin)
            if v is None or "val_loss" not in v:
                return None
            out[f"loss_{k}"] = v["val_loss"]
            out[f"loss_{k}_se"] = v.get("val_loss_se")
        return out

    def reevaluate(self):
        """Evaluates again every finished run that another evaluation binary evaluated, keeping the
        earlier figures in its done.json (evals_before) and in the manifest (event reeval)."""
        plan = self.plan()
        _, recs = self.state(plan)
        for name in plan.order:
            if self.stop:
                break
            rec = recs.get(name)
            run = plan.runs[name]
            if not rec or rec.get("eval_commit", rec.get("commit")) == self.binary(run)[3]:
                continue
            ev = self.evaluate_all(self.final_ckpt(run), run)
            if ev is None:
                print(f"compare: {name}: re-evaluation failed; kept the earlier figures", flush=True)
                continue
            path = os.path.join(self.rundir(name), "done.json")
            d = read_json(path)
            keys = [f"loss_{k}{e}" for k in self.EVAL_SPLITS for e in ("", "_se")]
            before = {k: d.get(k) for k in keys}
            before["eval_commit"] = d.get("eval_commit", d.get("commit"))
            d.setdefault("evals_before", []).append(before)
            d.update(ev)
            write_json(path, d)
            self.log(event="reeval", run=name, hash=d["hash"], time=now(), before=before,
                     after={k: ev[k] for k in keys}, eval_commit=ev["eval_commit"])
            print(f"compare: re-evaluated {name} with {ev['eval_commit']}: report "
                  f"{before['loss_report']:.4f} -> {ev['loss_report']:.4f}, tune "
                  f"{before['loss_tune']:.4f} -> {ev['loss_tune']:.4f}", flush=True)

    # ---- the choices ----
    def decide(self, plan, recs):
        """Makes every choice whose inputs have all finished; each is made once and kept."""
        dec = self.decisions()
        changed = False
        p = plan.p
        lr_runs = [n for n in plan.order if plan.runs[n].stage == "lr"]
        if "lr" not in dec and all(n in recs for n in lr_runs):
            scores = {plan.runs[n].cfg["train"]["lr"]: recs[n]["loss_tune"] for n in lr_runs}
            best = min(scores, key=lambda k: scores[k])
            dec["lr"] = {"value": best, "split": "tune", "by": "lowest annealed tune loss, seed 1",
                         "scores": {str(k): v for k, v in scores.items()}, "time": now()}
            changed = True
        if "lr" in dec:
            front = analysis.frontier_points(plan, recs, "loss_tune")
            front_done = all(n in recs for n in plan.order if plan.runs[n].stage == "frontier")
            sweep = [m["name"] for m in p["methods"] if m.get("taus") == "sweep"]
            tau_runs = [n for n in plan.order if plan.runs[n].stage == "screen" and
                        plan.runs[n].arm.rsplit("-t", 1)[0] in sweep]
            if "tau" not in dec and front_done and tau_runs and all(n in recs for n in tau_runs):
                scores = {plan.runs[n].tau: analysis.choice_score(front, recs[n]) for n in tau_runs}
                best = max(scores, key=lambda k: scores[k])
                dec["tau"] = {"value": best, "split": "tune",
                              "by": f"largest compute-equivalent saving on the tune split ({', '.join(sweep)})",
                              "scores": {str(k): v for k, v in scores.items()}, "time": now()}
                changed = True
            st, _ = self.state(plan)
            screen = [n for n in plan.order if plan.runs[n].stage == "screen"]
            if ("best" not in dec and "tau" in dec and front_done and
                    all(st.get(n) in ("done", "rejected", "failed") for n in screen) and
                    not any(plan.runs[n].pending for n in screen)):
                scores = {plan.runs[n].arm: analysis.choice_score(front, recs[n])
                          for n in screen if n in recs}
                order = sorted(scores, key=lambda k: -scores[k])
                dec["best"] = {"value": order[:p["confirm_arms"]], "split": "tune",
                               "by": "largest compute-equivalent saving on the tune split, seed 1",
                               "scores": scores, "time": now()}
                changed = True
        if changed:
            write_json(os.path.join(self.out, "decisions.json"), dec)
        return changed

    # ---- the loop ----
    def on_signal(self, signum, frame):
        self.stop = signum
        if self.child:  # every rank checkpoints at the next step and exits with status 3
            try:
                self.child.send_signal(signal.SIGUSR1)
            except OSError:
                pass

    def run(self):
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        tried = set()
        bad = 0
        self.reevaluate()
        while not self.stop:
            plan = self.plan()
            st, recs = self.state(plan)
            if self.decide(plan, recs):
                continue
            nxt = next((n for n in plan.order if st[n] in ("left", "failed") and n not in tried), None)
            if nxt is None:
                break
            run = plan.runs[nxt]
            tried.add(nxt)
            left = sum(1 for v in st.values() if v in ("left", "waiting", "pending"))
            print(f"compare: [{run.stage}] {nxt} ({left} left), started {now()}", flush=True)
            status, why = self.execute(plan, run)
            d = read_json(os.path.join(self.rundir(nxt), "done.json"), {})
            if status == "done":
                print(f"    report loss {d['loss_report']:.4f}, tune {d['loss_tune']:.4f}, "
                      f"{d['flops']:.3e} FLOPs, wall {d['wall_s']:.0f} s", flush=True)
            else:
                print(f"    {status}" + (f": {why}" if why else ""), flush=True)
                bad += status == "failed"
            if status == "interrupted":
                return 3
        if self.stop:
            return 3
        return 1 if bad else 0

    # ---- --status ----
    def status(self):
        plan = self.plan()
        st, recs = self.state(plan)
        cur = read_json(os.path.join(self.out, "current.json"))
        running = None
        if cur:
            try:
                os.kill(cur.get("harness_pid", -1), 0)
                running = cur["run"]
            except (OSError, TypeError):
                pass
        done_f = sum(recs[n]["own_flops"] for n in recs)
        done_w = sum(recs[n]["wall_s"] for n in recs)
        rate = done_f / done_w if done_w > 0 and done_f > 0 else None
        rows, left_f, total_f = [], 0.0, 0.0
        for n in plan.order:
            r = plan.runs[n]
            f = recs[n]["own_flops"] if n in recs else r.est_flops(plan.runs)
            total_f += f
            s = st[n]
            if n == running:
                s = "running"
            if s != "done":
                left_f += f
            extra = f"needs choice '{r.pending}'" if r.pending else (
                f"after {r.parent}" if s == "waiting" else "")
            if n in recs:
                extra = f"report {recs[n]['loss_report']:.4f}  wall {recs[n]['wall_s']:.0f} s"
            rows.append(f"  {s:<9} {r.stage:<8} {n:<34} {f:9.2e}  {extra}")
        print(f"plan {os.path.relpath(self.plan_path, self.root)}, out {self.out}")
        print("\n".join(rows))
        cnt = {}
        for n in plan.order:
            s = "running" if n == running else st[n]
            cnt[s] = cnt.get(s, 0) + 1
        print("  " + ", ".join(f"{v} {k}" for k, v in sorted(cnt.items())))
        dec = self.decisions()
        for k in ("lr", "tau", "best"):
            if k in dec:
                print(f"  choice {k}: {dec[k]['value']} ({dec[k]['by']}, {dec[k]['split']} split)")
        r = rate or ASSUMED_FLOPS_PER_S
        src = "measured on the finished runs" if rate else "assumed; nothing has finished yet"
        print(f"  plan total {total_f:.3e} FLOPs (pending runs estimated, V-cycles at full size): "
              f"{total_f / r / 3600:.2f} h at {r / 1e9:.0f} GFLOP/s ({src})")
        print(f"  left {left_f:.3e} FLOPs: ETA {left_f / r / 3600:.2f} h"
              + (f" (running now: {running})" if running else ""))
        return 0
