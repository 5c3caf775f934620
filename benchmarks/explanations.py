#!/usr/bin/python3
"""Evidence that the model's explanations hold on real data: group programmes against expectations.

Runs the pipeline (build/examples/velten_pipeline) for several seeds on three cases, reads the
group programmes it writes, checks them against what is known about the data, and puts the
expression baseline (benchmarks/expression_baseline.py: mean z-scored log expression of each set,
Cohen's d group versus rest) next to every check.

  hsmm        HSMM myoblast time course (Trapnell et al. 2014), log1p(FPKM), Hallmark v6.2.
              0h: HALLMARK_G2M_CHECKPOINT or HALLMARK_E2F_TARGETS in the top 3;
              72h: HALLMARK_MYOGENESIS in the top 3.
  pbmc        scanpy's pbmc68k_reduced (700 cells, 765 genes, already log-normalised), Blood
              Transcription Modules (Li et al. 2014) with --min-genes 5 (the modules are small).
              CD19+_B: a B-cell module, CD56+_NK: an NK-cell module, CD14+_Monocyte: a monocyte
              module in the top 3.
  simulation  the pipeline's built-in simulated haematopoiesis: each planted set SIM_<PROGRAMME>
              in the top 3 of a group where the programme is planted; no decoy set in any
              group's top 3; and (supplementary) rank 1 of every group a set planted there.

"Top 3" of a group: the rows of that group with direction "higher" and rank <= 3 (rank 1 = the
strongest set higher in the group; sets that do not stand out from random gene sets have rank NA). With --ensemble K one more run per case (first seed, the
pipeline's --ensemble K) is checked the same way on group_programmes_consensus.csv.

  benchmarks/explanations.py [--pipeline build/examples/velten_pipeline] [--seeds 1,2,3,4,5]
                             [--cases hsmm,pbmc,simulation] [--data DIR] [--work DIR] [--keep]
                             [--extra "--epochs 200"] [--ensemble K] [--threads N] [--json out.json]

Prints the top 3 of every group per seed as the runs finish, then one Markdown table (one row per
case and check). Exit code 0 when every run (pipeline and baseline) completed, whether or not the
checks pass; 1 when a run failed (its stderr tail is printed and the other seeds still run).
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import expression_baseline as eb  # noqa: E402

DEFAULT_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
DEFAULT_PIPELINE = os.path.join(ROOT, "build", "examples", "velten_pipeline")

PROGRAMME_COLUMNS = ["group", "gene_set", "direction", "score", "p_value", "q_value", "rank", "units"]
CONSENSUS_COLUMNS = ["group", "gene_set", "direction", "mean_rank", "top5_fraction", "p_value", "q_value", "rank"]

# --------------------------------------------------------------------------------------------
# PBMC: Blood Transcription Module names (btm_li2014_blood_modules.gmt) that the patterns match.
#   /B_cell/i:   BTM_M9_B_cell_development, BTM_M47_0.._4_enriched_in_B_cells_I..V,
#                BTM_M57_immuregulation_monocytes_T_and_B_cells (mixed: also matches /monocyte/),
#                BTM_M58_B_cell_development_activation, BTM_M62_0_T_B_cell_development_activation
#                (mixed T/B), BTM_M69_enriched_in_B_cells_VI,
#                BTM_M83_enriched_in_naive_and_memory_B_cells, BTM_M123_enriched_in_B_cell_differentiation,
#                BTM_M152_0/1/2_TBA_source_(naive_/memory_)B_cells,
#                BTM_M156_0_plasma_cells_B_cells_immunoglobulins, BTM_M217_TBA_source_B_cells,
#                BTM_NA_B_cell_surface_signature_S2, BTM_NA_Naive_B_cell_surface_signature_S8,
#                BTM_NA_Memory_B_cell_surface_signature_S9.
#                (BTM_M54_BCR_signaling has no "B_cell" in its name and is not matched.)
#   /NK_cell/i:  BTM_M7_2_enriched_in_NK_cells_I, BTM_M61_0_enriched_in_NK_cells_II,
#                BTM_M61_1_enriched_in_NK_cells_KIR_cluster, BTM_M61_2_enriched_in_NK_cells_receptor_activation,
#                BTM_M157_enriched_in_NK_cells_III, BTM_NA_NK_cell_surface_signature_S1.
#   /monocyte/i: BTM_M4_15_enriched_in_monocytes_I, BTM_M11_0_enriched_in_monocytes_II,
#                BTM_M23_RA_WNT_CSF_receptors_network_monocyte, BTM_M57_immuregulation_monocytes_T_and_B_cells
#                (mixed), BTM_M64_enriched_in_activated_dendritic_cells_monocytes,
#                BTM_M73_enriched_in_monocytes_III, BTM_M81_enriched_in_myeloid_cells_and_monocytes,
#                BTM_M118_0_enriched_in_monocytes_IV, BTM_M118_1_enriched_in_monocytes_surface,
#                BTM_NA_Monocyte_surface_signature_S4.
# With the 765 genes of the data and --min-genes 5 only some of them are usable (e.g. M47_0/1/2,
# M156_0 and the B-cell surface signatures; M7_2, M61_0, M157; M11_0, M118_0/1 and the monocyte
# surface signature). The table shows which set satisfied a check, so a mixed module is visible.
# --------------------------------------------------------------------------------------------
B_CELL = re.compile(r"B_cell", re.I)
NK_CELL = re.compile(r"NK_cell", re.I)
MONOCYTE = re.compile(r"monocyte", re.I)

# --------------------------------------------------------------------------------------------
# Simulation: where each programme is planted, read from include/exsal/data/simulator.hpp
# (default SimulationOptions, populations in the order HSC, MPP, CMP, MLP, MEP, GMP).
#   Lineage programmes: activity = profile(population, t) x lognormal noise, the profile linear in
#   the pseudotime t ~ uniform[0, 1) from a start to an end level, so its mean in a population is
#   (start + end) / 2 (times the same noise mean everywhere).
#   CELL_CYCLE: active with a probability per population, activity uniform(0.4, 1) (mean 0.7).
#   INTERFERON: a random 15 % of all cells, whatever the population: not specific to any group.
# "Planted in group G" = the programme's expected activity in G is higher than its expected
# activity over all other cells (other populations weighted by their share of cells), which is the
# comparison the pipeline makes (group versus rest). This gives
#   STEMNESS: HSC, MPP; ERYTHROID: MEP; MEGAKARYOCYTE: MEP; MYELOID: GMP; LYMPHOID: MLP;
#   CELL_CYCLE: CMP, MEP, GMP (probabilities 0.45/0.5/0.45 against about 0.35 in the rest: a weak
#   contrast); INTERFERON: none (excluded from the planted check and said so in the output).
# Programmes with other names get a random profile drawn from the seed; they are reported as
# unknown and excluded as well.
# --------------------------------------------------------------------------------------------
SIM_POPULATIONS = ["HSC", "MPP", "CMP", "MLP", "MEP", "GMP"]
SIM_WEIGHTS = [0.15, 0.15, 0.2, 0.1, 0.2, 0.2]
SIM_LINEAGE = {
    "STEMNESS": [(1.0, 0.8), (0.8, 0.5), (0.5, 0.2), (0.5, 0.2), (0.2, 0.0), (0.2, 0.0)],
    "ERYTHROID": [(0.0, 0.0), (0.0, 0.05), (0.05, 0.3), (0.05, 0.0), (0.3, 1.0), (0.3, 0.05)],
    "MEGAKARYOCYTE": [(0.15, 0.15), (0.15, 0.1), (0.1, 0.25), (0.1, 0.0), (0.25, 0.7), (0.25, 0.0)],
    "MYELOID": [(0.0, 0.0), (0.0, 0.05), (0.05, 0.3), (0.05, 0.15), (0.3, 0.05), (0.3, 1.0)],
    "LYMPHOID": [(0.0, 0.0), (0.0, 0.1), (0.1, 0.0), (0.1, 1.0), (0.0, 0.0), (0.0, 0.0)],
}
SIM_CELL_CYCLE_PROBABILITY = [0.1, 0.3, 0.45, 0.35, 0.5, 0.45]
SIM_CELL_CYCLE_MEAN_ACTIVITY = 0.7  # uniform(0.4, 1)


def expected_activity(programme):
    """Expected activity per population (list of 6), or None when it does not depend on the population."""
    if programme in SIM_LINEAGE:
        return [(a + b) / 2.0 for a, b in SIM_LINEAGE[programme]]
    if programme == "CELL_CYCLE":
        return [p * SIM_CELL_CYCLE_MEAN_ACTIVITY for p in SIM_CELL_CYCLE_PROBABILITY]
    return None


def planted_groups(programme):
    """(populations where the programme is higher than in the rest, reason when there are none)."""
    if programme == "INTERFERON":
        return [], "active in a random 15 % of all cells regardless of population: not group-specific"
    act = expected_activity(programme)
    if act is None:
        return [], "not a built-in programme (random profile from the seed): unknown, not checked"
    groups = []
    total_w = sum(SIM_WEIGHTS)
    for i, g in enumerate(SIM_POPULATIONS):
        rest_w = total_w - SIM_WEIGHTS[i]
        rest = sum(w * a for j, (w, a) in enumerate(zip(SIM_WEIGHTS, act)) if j != i) / rest_w
        if act[i] > rest + 1e-12:
            groups.append(g)
    if not groups:
        return [], "higher in no population than in the rest"
    return groups, ""


# --------------------------------------------------------------------------------------------
# Reading the pipeline's output
# --------------------------------------------------------------------------------------------
class OutputError(Exception):
    pass


def read_programmes(path, columns):
    """Reads group_programmes.csv (or the consensus file) and checks its columns and values."""
    if not os.path.isfile(path):
        raise OutputError(f"{path} was not written")
    try:
        df = pd.read_csv(path, dtype={"group": str, "gene_set": str, "direction": str}, keep_default_na=False)
    except Exception as e:  # noqa: BLE001 - any parse error is reported the same way
        raise OutputError(f"{path}: cannot be read as CSV ({e})") from e
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise OutputError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(columns)}; "
                          f"found {','.join(map(str, df.columns))}")
    bad = sorted(set(df["direction"]) - {"higher", "lower"})
    if bad:
        raise OutputError(f"{path}: direction must be 'higher' or 'lower', found {', '.join(bad)}")
    # NA: the set has no rank (it does not stand out from random gene sets of its size).
    raw = df["rank"].astype(str).str.strip()
    rank = pd.to_numeric(raw.where(raw != "NA"), errors="coerce")
    bad = rank.isna() & (raw != "NA") & (raw != "nan")
    if bad.any():
        raise OutputError(f"{path}: non-numeric rank in {int(bad.sum())} row(s)")
    df["rank"] = rank
    return df


def ordered_groups(groups):
    """Groups in order of appearance, but the simulated populations in tree order."""
    groups = list(dict.fromkeys(groups))
    sim = [g for g in SIM_POPULATIONS if g in groups]
    return sim + [g for g in groups if g not in sim]


def top3_of(df, k=3):
    """{group: [sets with direction higher and rank <= k, by rank]} for every group in the table."""
    out = {}
    for g in ordered_groups(df["group"]):
        t = df[(df["group"] == g) & (df["direction"] == "higher") & (df["rank"] <= k)].sort_values("rank")
        out[g] = list(t["gene_set"])
    return out


def baseline_top3(table, k=3):
    return {g: eb.top_sets(table, g, k) for g in ordered_groups(table["group"])}


def read_sim_sets(gmt):
    """(planted set names, decoy set names) from the synthetic GMT (by the description column)."""
    planted, decoys = [], []
    for name, desc, _ in eb.read_gmt(gmt):
        d = desc.strip().lower()
        if d == "planted":
            planted.append(name)
        elif d == "decoy":
            decoys.append(name)
    if not planted:
        raise OutputError(f"{gmt}: no set with description 'planted'")
    return planted, decoys


# --------------------------------------------------------------------------------------------
# Checks: each returns (ok, note, shown) from {group: top 3}; `shown` = groups whose top 3 the
# table prints for it. ok is None for a check that does not apply (excluded).
# --------------------------------------------------------------------------------------------
def check_any_of(group, wanted, what):
    def fn(top, ctx):
        if group not in top:
            return False, f"group {group} not in the output", [group]
        hit = [s for s in top[group] if s in wanted]
        return bool(hit), (", ".join(hit) if hit else f"no {what} in top 3"), [group]
    return fn


def check_pattern(group, pattern, what):
    def fn(top, ctx):
        if group not in top:
            return False, f"group {group} not in the output", [group]
        hit = [s for s in top[group] if pattern.search(s)]
        return bool(hit), (", ".join(hit) if hit else f"no {what} in top 3"), [group]
    return fn


def check_planted(programme):
    set_name = "SIM_" + programme
    groups, _ = planted_groups(programme)

    def fn(top, ctx):
        if set_name not in ctx["planted"]:
            return False, f"{set_name} not among the planted sets of this run", groups
        hit = [g for g in groups if set_name in top.get(g, [])]
        return bool(hit), ("top 3 in " + ", ".join(hit) if hit else "in no top 3 of " + ", ".join(groups)), groups
    return fn


def check_no_decoy(top, ctx):
    decoys = set(ctx["decoys"])
    hits = [f"{g}: {s}" for g in SIM_POPULATIONS for s in top.get(g, []) if s in decoys]
    missing = [g for g in SIM_POPULATIONS if g not in top]
    note = "; ".join(hits) if hits else "none"
    if missing:
        note += " (groups missing: " + ", ".join(missing) + ")"
    return not hits and not missing, note, []


def check_first_is_planted(top, ctx):
    planted_in = {}
    for name in ctx["planted"]:
        prog = name[len("SIM_"):] if name.startswith("SIM_") else name
        for g in planted_groups(prog)[0]:
            planted_in.setdefault(g, set()).add(name)
    wrong = []
    for g in SIM_POPULATIONS:
        first = top.get(g, [])[:1]
        if not first or first[0] not in planted_in.get(g, set()):
            wrong.append(f"{g}: {first[0] if first else '(none)'}")
    return not wrong, ("; ".join(wrong) if wrong else "all planted"), []


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------
def make_cases(data):
    hsmm = os.path.join(data, "hsmm_trapnell2014_fpkm.csv.gz")
    hallmark = os.path.join(data, "h.all.v6.2.symbols.gmt")
    pbmc = os.path.join(data, "pbmc68k_reduced_700cells_765genes_lognorm.csv.gz")
    btm = os.path.join(data, "btm_li2014_blood_modules.gmt")
    sim_checks = []
    for prog in ["ERYTHROID", "MEGAKARYOCYTE", "MYELOID", "LYMPHOID", "STEMNESS", "CELL_CYCLE", "INTERFERON"]:
        groups, reason = planted_groups(prog)
        if groups:
            sim_checks.append((f"sim_planted_{prog.lower()}",
                               f"Simulation: SIM_{prog} in top 3 of {'/'.join(groups)}", check_planted(prog)))
        else:
            sim_checks.append((f"sim_planted_{prog.lower()}", f"Simulation: SIM_{prog} ({reason})", None))
    sim_checks.append(("sim_no_decoy", "Simulation: no decoy in any group's top 3", check_no_decoy))
    sim_checks.append(("sim_first_planted", "Simulation (supplementary): rank 1 of every group is planted there",
                       check_first_is_planted))
    return {
        "hsmm": {
            "title": "HSMM",
            "args": ["--expression", hsmm, "--gene-sets", hallmark, "--gene-set-prefix", "HALLMARK_",
                     "--input-transform", "log1p"],
            "baseline": {"expression": hsmm, "gmt": hallmark, "prefix": "HALLMARK_", "log": True, "min_genes": 10},
            "inputs": [hsmm, hallmark],
            "notes": ["HSMM: pipeline --input-transform log1p; baseline log1p(FPKM), Hallmark v6.2, --min-genes 10."],
            "checks": [
                ("hsmm_0h_proliferation", "HSMM 0h: G2M or E2F in top 3",
                 check_any_of("0h", {"HALLMARK_G2M_CHECKPOINT", "HALLMARK_E2F_TARGETS"}, "G2M/E2F")),
                ("hsmm_72h_myogenesis", "HSMM 72h: MYOGENESIS in top 3",
                 check_any_of("72h", {"HALLMARK_MYOGENESIS"}, "MYOGENESIS")),
            ],
        },
        "pbmc": {
            "title": "PBMC68k",
            "args": ["--expression", pbmc, "--gene-sets", btm, "--input-transform", "none", "--min-gene-max", "0",
                     "--min-genes", "5"],
            "baseline": {"expression": pbmc, "gmt": btm, "prefix": None, "log": False, "min_genes": 5},
            "inputs": [pbmc, btm],
            "notes": ["PBMC68k: the BTM sets are small (median 13 genes) and the data has 765 genes, so model and "
                      "baseline both use --min-genes 5 (not the default 10); input already log-normalised "
                      "(pipeline --input-transform none --min-gene-max 0, baseline without log1p)."],
            "checks": [
                ("pbmc_b", "PBMC CD19+_B: a B-cell module in top 3", check_pattern("CD19+_B", B_CELL, "/B_cell/ module")),
                ("pbmc_nk", "PBMC CD56+_NK: an NK-cell module in top 3",
                 check_pattern("CD56+_NK", NK_CELL, "/NK_cell/ module")),
                ("pbmc_monocyte", "PBMC CD14+_Monocyte: a monocyte module in top 3",
                 check_pattern("CD14+_Monocyte", MONOCYTE, "/monocyte/ module")),
            ],
        },
        "simulation": {
            "title": "Simulation",
            "args": [],
            "baseline": None,  # per seed, on the data the run wrote
            "inputs": [],
            "notes": ["Simulation: planted groups read from the simulator's profiles (group versus rest): " +
                      "; ".join(f"{p}: {', '.join(planted_groups(p)[0]) or 'none - ' + planted_groups(p)[1]}"
                                for p in ["STEMNESS", "ERYTHROID", "MEGAKARYOCYTE", "MYELOID", "LYMPHOID",
                                          "CELL_CYCLE", "INTERFERON"]) +
                      ". Baseline per seed on the run's simulated_expression.csv.gz (log1p) and "
                      "synthetic_gene_sets.gmt. Groups with fewer than 3 planted programmes (HSC, MPP, CMP, MLP, "
                      "GMP have 1-2) must fill their top 3 with other sets, so the decoy check is strict; the "
                      "supplementary row asks only that rank 1 be a set planted in the group."],
            "checks": sim_checks,
        },
    }


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------
def tail(text, n=25):
    lines = (text or "").rstrip().splitlines()
    return "\n".join(lines[-n:])


def run_pipeline(a, case, seed, out, ensemble=None):
    """Runs the pipeline once; returns a dict with status, returncode, seconds, command."""
    cmd = [a.pipeline] + case["args"] + ["--seed", str(seed), "--out", out]
    if ensemble:
        cmd += ["--ensemble", str(ensemble)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    cmd += shlex.split(a.extra or "")
    if os.path.isdir(out) and os.listdir(out):
        cmd.append("--force")  # a reused --work folder: the run replaces the files it writes
    rec = {"command": " ".join(shlex.quote(c) for c in cmd), "out": out}
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        rec.update(status="error", returncode=None, seconds=0.0, error=f"cannot start the pipeline: {e}")
        return rec
    rec["seconds"] = round(time.time() - t0, 1)
    rec["returncode"] = p.returncode
    if p.returncode != 0:
        rec.update(status="error", error=f"exit code {p.returncode}", stderr_tail=tail(p.stderr))
    else:
        rec["status"] = "ok"
    return rec


def evaluate(checks, top, ctx):
    res = {}
    for cid, _, fn in checks:
        if fn is None:
            res[cid] = {"ok": None, "note": "excluded"}
            continue
        ok, note, shown = fn(top, ctx)
        res[cid] = {"ok": ok, "note": note, "groups": shown}
    return res


def fmt_top(top, groups):
    if not groups:
        return ""
    if len(groups) == 1:
        return ", ".join(top.get(groups[0], [])) or "(none)"
    return "; ".join(f"{g}: {', '.join(top.get(g, [])) or '(none)'}" for g in groups)


def print_top(label, top):
    print(f"  {label}")
    for g, sets in top.items():
        print(f"    {g}: {', '.join(sets) if sets else '(no set higher)'}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="velten_pipeline binary (default: %(default)s)")
    p.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated seeds (default: %(default)s)")
    p.add_argument("--cases", default="hsmm,pbmc,simulation", help="comma-separated cases (default: %(default)s)")
    p.add_argument("--data", default=DEFAULT_DATA, help="data folder (default: %(default)s)")
    p.add_argument("--work", default=None, help="folder for the pipeline outputs (default: a temporary folder, "
                                                 "removed at the end unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    p.add_argument("--extra", default="", help='extra pipeline arguments, e.g. "--epochs 200"')
    p.add_argument("--ensemble", type=int, default=None, metavar="K",
                   help="also one run per case with --ensemble K (first seed), checked on the consensus file")
    p.add_argument("--threads", type=int, default=None, help="passed to the pipeline as --threads")
    p.add_argument("--json", default=None, help="write a JSON summary here")
    a = p.parse_args(argv)

    try:
        seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds expects comma-separated integers, got '{a.seeds}'")
    if not seeds:
        p.error("--seeds is empty")
    if len(set(seeds)) != len(seeds):
        p.error("--seeds has repeated seeds")
    all_cases = make_cases(a.data)
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in all_cases]
    if unknown or not cases:
        p.error(f"--cases: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(all_cases)}")
    if a.ensemble is not None and a.ensemble < 2:
        p.error("--ensemble K needs K >= 2")
    a.pipeline = os.path.abspath(a.pipeline)

    own_tmp = a.work is None
    work = tempfile.mkdtemp(prefix="exsal_explanations_") if own_tmp else os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    failures = []
    summary = {"settings": {"pipeline": a.pipeline, "seeds": seeds, "cases": cases, "data": a.data, "work": work,
                            "extra": a.extra, "ensemble": a.ensemble, "threads": a.threads},
               "cases": {}}
    if not (os.path.isfile(a.pipeline) and os.access(a.pipeline, os.X_OK)):
        print(f"error: the pipeline {a.pipeline} does not exist or is not executable; every model run will fail "
              f"(baselines on real data still run)", file=sys.stderr)
    print(f"# Explanations on real data\n\npipeline {a.pipeline}\nseeds {','.join(map(str, seeds))}; "
          f"extra arguments: {a.extra or '(none)'}; work folder {work}\n", flush=True)

    rows = []
    try:
        for name in cases:
            case = all_cases[name]
            cs = {"runs": {}, "ensemble": None, "baseline": {}, "notes": list(case["notes"])}
            summary["cases"][name] = cs
            print(f"## {case['title']}", flush=True)
            for note in case["notes"]:
                print(f"note: {note}")
            missing_inputs = [f for f in case["inputs"] if not os.path.isfile(f)]
            if missing_inputs:
                msg = f"{name}: missing input file(s) {', '.join(missing_inputs)}"
                print(f"error: {msg}", file=sys.stderr)
                failures.append(msg)

            # baseline on the real data (deterministic: once)
            base_static = None
            if case["baseline"] is not None and not missing_inputs:
                b = case["baseline"]
                try:
                    t = eb.baseline_programmes(b["expression"], None, b["gmt"], gene_set_prefix=b["prefix"],
                                               log=b["log"], min_genes=b["min_genes"])
                    base_static = baseline_top3(t)
                    print_top(f"baseline (min-genes {b['min_genes']}, {t['gene_set'].nunique()} sets usable)",
                              base_static)
                    cs["baseline"]["all"] = {"status": "ok", "top3": base_static,
                                             "checks": evaluate(case["checks"], base_static, {})}
                except Exception as e:  # noqa: BLE001
                    msg = f"{name}: baseline failed: {e}"
                    print(f"error: {msg}", file=sys.stderr)
                    failures.append(msg)
                    cs["baseline"]["all"] = {"status": "error", "error": str(e)}

            runs = [(s, None) for s in seeds]
            if a.ensemble:
                runs.append((seeds[0], a.ensemble))
            for seed, ens in runs:
                label = f"seed {seed}" + (f", ensemble {ens}" if ens else "")
                out = os.path.join(work, f"{name}_{seed}" + (f"_ensemble{ens}" if ens else ""))
                if missing_inputs:
                    rec = {"status": "error", "error": "input files missing", "out": out}
                else:
                    rec = run_pipeline(a, case, seed, out, ens)
                if rec["status"] == "ok":
                    try:
                        fname = "group_programmes_consensus.csv" if ens else "group_programmes.csv"
                        df = read_programmes(os.path.join(out, fname), CONSENSUS_COLUMNS if ens else PROGRAMME_COLUMNS)
                        top = top3_of(df)
                        ctx = {}
                        if name == "simulation":
                            gmt = os.path.join(out, "synthetic_gene_sets.gmt")
                            ctx["planted"], ctx["decoys"] = read_sim_sets(gmt)
                            rec["planted_sets"], rec["decoy_sets"] = ctx["planted"], ctx["decoys"]
                        rec["top3"] = top
                        rec["checks"] = evaluate(case["checks"], top, ctx)
                        print_top(f"model, {label} ({rec.get('seconds', '?')} s)", top)
                        if name == "simulation" and not ens:
                            expr = os.path.join(out, "simulated_expression.csv.gz")
                            if not os.path.isfile(expr):
                                raise OutputError(f"{expr} was not written")
                            t = eb.baseline_programmes(expr, None, gmt, log=True, min_genes=10)
                            btop = baseline_top3(t)
                            cs["baseline"][str(seed)] = {"status": "ok", "top3": btop,
                                                         "checks": evaluate(case["checks"], btop, ctx)}
                            print_top(f"baseline, {label}", btop)
                    except Exception as e:  # noqa: BLE001 - OutputError and anything unexpected in the files
                        rec["status"] = "error"
                        rec["error"] = str(e)
                if rec["status"] != "ok":
                    msg = f"{name} {label}: {rec.get('error')}"
                    failures.append(msg)
                    print(f"error: {msg}", file=sys.stderr)
                    if rec.get("command"):
                        print(f"  command: {rec['command']}", file=sys.stderr)
                    if rec.get("stderr_tail"):
                        print("  stderr (last lines):\n" + "\n".join("    " + l for l in rec["stderr_tail"].splitlines()),
                              file=sys.stderr)
                    sys.stderr.flush()
                if ens:
                    cs["ensemble"] = rec
                else:
                    cs["runs"][str(seed)] = rec
            print(flush=True)

            # table rows of this case
            first = str(seeds[0])
            for cid, title, fn in case["checks"]:
                row = {"case": name, "check": cid, "title": title}
                if fn is None:
                    row.update(model="excluded (not group-specific)", ensemble="excluded", baseline="excluded",
                               model_top="", baseline_top="")
                    rows.append(row)
                    continue
                passed, failed, noout = [], [], []
                for s in seeds:
                    r = cs["runs"].get(str(s), {})
                    if r.get("status") != "ok":
                        noout.append(s)
                    elif r["checks"][cid]["ok"]:
                        passed.append(s)
                    else:
                        failed.append(s)
                txt = f"{len(passed)}/{len(seeds)}"
                extra = []
                if failed:
                    extra.append("failed: " + ",".join(map(str, failed)))
                if noout:
                    extra.append("no output: " + ",".join(map(str, noout)))
                row["model"] = txt + (f" ({'; '.join(extra)})" if extra else "")
                if a.ensemble:
                    e = cs["ensemble"] or {}
                    row["ensemble"] = ("yes" if e["checks"][cid]["ok"] else "no") if e.get("status") == "ok" \
                        else "no output"
                r1 = cs["runs"].get(first, {})
                if r1.get("status") == "ok":
                    c = r1["checks"][cid]
                    row["model_top"] = fmt_top(r1["top3"], c["groups"]) if c["groups"] else c["note"]
                else:
                    row["model_top"] = "no output"
                if name == "simulation":
                    bpass = [s for s in seeds if cs["baseline"].get(str(s), {}).get("checks", {}).get(cid, {}).get("ok")]
                    bran = [s for s in seeds if cs["baseline"].get(str(s), {}).get("status") == "ok"]
                    row["baseline"] = f"{len(bpass)}/{len(bran)} seeds" if bran else "no data"
                    b1 = cs["baseline"].get(first)
                else:
                    b1 = cs["baseline"].get("all")
                    row["baseline"] = ("yes" if b1["checks"][cid]["ok"] else "no") if b1 and b1.get("status") == "ok" \
                        else "error"
                if b1 and b1.get("status") == "ok":
                    c = b1["checks"][cid]
                    row["baseline_top"] = fmt_top(b1["top3"], c["groups"]) if c["groups"] else c["note"]
                else:
                    row["baseline_top"] = "no data"
                rows.append(row)
    finally:
        if own_tmp and not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    # the table
    first = seeds[0]
    head = ["check", f"model (seeds passing, of {len(seeds)})"]
    if a.ensemble:
        head.append(f"model ensemble K={a.ensemble} (seed {first})")
    head += ["baseline", f"model top 3 (seed {first})", f"baseline top 3{' (seed %d)' % first if 'simulation' in cases else ''}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["title"], r["model"]]
        if a.ensemble:
            cells.append(r.get("ensemble", ""))
        cells += [r["baseline"], r["model_top"], r["baseline_top"]]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    table = "\n".join(lines)
    print("## Checks\n")
    print("Top 3 = direction 'higher', rank <= 3. Baseline: mean z-scored log expression per set, Cohen's d group "
          "vs rest (deterministic on real data; on the simulation it runs on each seed's data). For a check over "
          "several groups or all groups the top-3 columns show those groups, or the offending sets.\n")
    print(table)
    if failures:
        print(f"\n{len(failures)} run(s) failed:")
        for f in failures:
            print(f"  - {f}")
    code = 1 if failures else 0
    summary.update(table=rows, table_markdown=table, failures=failures, exit_code=code)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
        print(f"\nwrote {a.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
