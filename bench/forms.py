"""Form validation benchmark: our compiled validator against jsonschema and fastjsonschema.

The document is a marketing-activity submission (builder/demo/marketing-activity.form.json)
with 20 budget lines, as JSON bytes. In the same run, with the cases interleaved in every
repetition, it measures:

  ours            compile_form(schema).validate(bytes, ctx): full rules (every error
                  collected, conditions, row conditions, totals that must equal the
                  budget, the duration formula, the date rule, file-name convention)
  ours, cold CEL  the same with the CEL memo cleared before each validation
  fastjsonschema  json.loads + the function compiled from OUR exported JSON Schema
  jsonschema      json.loads + Draft202012Validator(...).iter_errors, collecting all
                  errors (with the format checker, so dates are checked)

on the valid document and on one with 4 planted errors, then prints validations/s
(median (min..max) over the repetitions) and ratios taken within each repetition. Each
repetition runs every case once for a time box of thread CPU time, so that the other
processes of a busy machine do not count. It
also times compiling a generated 200-field schema (target: under 50 ms) and, once a
rendering it with the pages' macros (`render_hook`).

Usage:  .venv/bin/python bench/forms.py [--reps 7] [--seconds 0.5] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import fastjsonschema  # noqa: E402
import jsonschema  # noqa: E402
import msgspec  # noqa: E402

from forms import CompiledForm, CurrentUser, FormSchema, ValidationContext, compile_form, load_schema  # noqa: E402
from forms.json_schema import to_json_schema  # noqa: E402

DEMO = ROOT / "builder" / "demo" / "marketing-activity.form.json"
CONTEXT = ValidationContext(
    today=dt.date(2024, 6, 20),
    user=CurrentUser(id="u-1001", name="张伟", department_id="dept-marketing"),
    locale="zh-CN",
)
CATEGORIES = ["venue", "materials", "publicity", "other"]
_GOAL = (
    "通过线下快闪活动与线上直播联动，提升新品在华东区域一二线城市的品牌认知度，"
    "目标新增会员 8000 人、活动期间门店客流同比提升 15%、社交媒体曝光 500 万次。"
    "Raise awareness of the new product line by 30%, collect qualified leads and "
    "measure conversion from the pop-up events to online orders. "
)
_PLAN = (
    "第{n}阶段：确定场地与供应商，完成物料设计与印刷，安排人员培训和彩排；"
    "同步启动线上预热（公众号、短视频、社群），活动当天执行签到、互动、抽奖与直播；"
    "活动结束后 3 个工作日内完成数据回收与复盘。Phase {n}: venue, suppliers, "
    "materials, staff training, online warm-up, on-site execution and data review. "
)


def amounts(lines: int, budget: int = 200_000) -> list[int | float]:
    """`lines` amounts adding up to `budget`, as a browser sends them: 12800, 3560.5, 980.25."""
    cents = [(budget * 100 // lines) + (-1) ** i * (i * 1_105 % 9_000) for i in range(lines - 1)]
    cents.append(budget * 100 - sum(cents))
    return [c // 100 if c % 100 == 0 else c / 100 for c in cents]


def submission(lines: int = 20) -> dict[str, Any]:
    """A valid submission: budget lines add up to the budget exactly."""
    return {
        "activity_name": "2024年Q3新品推广会 Spring pop-up tour (Shanghai/Hangzhou)",
        "department": "dept-marketing",
        "applicant": "u-1001",
        "contact_phone": "+8613800138000",
        "start_date": "2024-07-12",
        "end_date": "2024-07-20",
        "budget": 200000,
        "urgent": False,
        "goal": _GOAL * 2,
        "audience": "18-35 岁城市白领与大学生，现有会员及其推荐好友 / urban professionals and students",
        "execution_plan": "".join(_PLAN.format(n=n) for n in range(1, 6)),
        "venue": "上海国际会展中心 2 号馆",
        "materials": "易拉宝 20 个，宣传册 2000 份，礼品袋 1500 个 / roll-ups, brochures, gift bags",
        "budget_lines": [
            {
                "item": f"预算项 {i + 1} / line item {i + 1}",
                "category": CATEGORIES[i % 4],
                "amount": amount,
                "note": ("含税 / tax included" if i % 2 == 0 else "")
                if CATEGORIES[i % 4] != "other"
                else "押金另计",
            }
            for i, amount in enumerate(amounts(lines))
        ],
        "supplier": "上海某某会展服务有限公司",
        "attachments": [
            {"id": "obj-1", "name": "2024Q3新品推广会策划案_市场部_20240701.pdf", "size": 2_345_678},
            {
                "id": "obj-2",
                "name": "场地合同_市场部_20240625.jpg",
                "size": 3_901_552,
                "content_type": "image/jpeg",
            },
            {"id": "obj-3", "name": "供应商报价_采购部_20240620.xlsx", "size": 48_213},
        ],
    }


def broken(lines: int = 20) -> dict[str, Any]:
    """The valid submission with 4 planted errors, as in the peer benchmark."""
    doc = submission(lines)
    doc["contact_phone"] = "12345"
    doc["end_date"] = "2024-13-40"
    doc["budget_lines"][5]["category"] = "fireworks"
    doc["attachments"][2]["size"] = 50 * 1024 * 1024
    return doc


def generated_schema(count: int = 200, version: int = 1) -> FormSchema:
    """A form of `count` fields of every kind, with conditions, formulas and tables."""
    fields: list[dict[str, Any]] = []
    for i in range(count):
        key = f"f{i:03d}"
        label = {"zh": f"字段 {i}", "en": f"Field {i}"}
        kind = i % 10
        spec: dict[str, Any] = {"key": key, "label": label, "required": i % 3 == 0}
        if kind == 0:
            spec.update(type="switch", required=False)
        elif kind == 1:
            spec.update(type="text", validation={"max_length": 100, "pattern": "^[^<>]*$"})
        elif kind == 2:
            spec.update(type="money", validation={"min": 0})
        elif kind == 3:
            spec.update(type="number", integer=True, validation={"min": 0, "max": 1000})
        elif kind == 4:
            spec.update(type="date")
        elif kind == 5:
            spec.update(type="select", options=[{"value": f"o{j}", "label": label} for j in range(5)])
        elif kind == 6:
            spec.update(type="textarea", visible_when=f"f{i - 6:03d}", required_when=f"f{i - 6:03d}")
        elif kind == 7:
            spec.update(type="computed", formula=f"f{i - 5:03d} + 1.0", result_type="money")
            del spec["required"]
        elif kind == 8:
            spec.update(
                type="detail_table",
                columns=[
                    {"type": "text", "key": "item", "label": label, "required": True},
                    {
                        "type": "select",
                        "key": "kind",
                        "label": label,
                        "options": [{"value": "a", "label": label}],
                    },
                    {"type": "money", "key": "amount", "label": label},
                    {"type": "text", "key": "note", "label": label, "required_when": 'row.kind == "a"'},
                    {"type": "computed", "key": "double", "label": label, "formula": "row.amount * 2.0"},
                ],
                totals=["amount"],
            )
        else:
            spec.update(type="attachment", max_count=5)
        fields.append(spec)
    document = {
        "key": "generated",
        "version": version,
        "title": {"zh": "生成", "en": "Generated"},
        "fields": fields,
    }
    return msgspec.convert(document, FormSchema)


def render_hook() -> Callable[[FormSchema], Any] | None:
    """The form renderer to time: the same Jinja2 macros the form page uses."""
    from web.templating import render_form

    return render_form


def measure(fn: Callable[[], Any], seconds: float) -> float:
    """Calls of `fn` per second of this thread's CPU time, running it for about `seconds`.

    CPU time (`time.thread_time`) leaves out the time other processes take on a busy
    machine; a few warm-up calls come first.
    """
    for _ in range(3):
        fn()
    batch = _batch_size(fn)
    clock = time.thread_time
    calls = 0
    started = clock()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        spent = clock() - started
        if spent >= seconds:
            return calls / spent


def _batch_size(fn: Callable[[], Any], target: float = 0.005) -> int:
    """How many calls of `fn` take about `target` seconds (at least 1)."""
    started = time.thread_time()
    fn()
    once = max(time.thread_time() - started, 1e-6)
    return max(1, min(1_000, int(target / once)))


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}..{max(values):,.0f})"


def ratio_summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}..{max(values):.2f})"


def build_cases() -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    schema = load_schema(DEMO)
    form = compile_form(schema)
    exported = to_json_schema(schema)
    jsonschema.Draft202012Validator.check_schema(exported)
    js = jsonschema.Draft202012Validator(
        exported, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    fjs = fastjsonschema.compile(exported)
    loads = json.loads
    valid = json.dumps(submission(), ensure_ascii=False).encode()
    invalid = json.dumps(broken(), ensure_ascii=False).encode()

    # Sanity: every validator agrees on both documents before anything is timed.
    checked = form.validate(valid, CONTEXT)
    assert checked.ok and not checked.warnings, checked.errors
    assert not list(js.iter_errors(loads(valid)))
    fjs(loads(valid))
    ours_invalid = form.validate(invalid, CONTEXT)
    theirs_invalid = list(js.iter_errors(loads(invalid)))
    assert len(ours_invalid.errors) == 4, ours_invalid.errors
    assert len(theirs_invalid) == 4, [e.message for e in theirs_invalid]

    def cold() -> None:
        form.clear_memos()
        form.validate(valid, CONTEXT)

    cases: dict[str, Callable[[], Any]] = {
        "valid / ours": lambda: form.validate(valid, CONTEXT),
        "valid / ours, cold CEL memo": cold,
        "valid / fastjsonschema": lambda: fjs(loads(valid)),
        "valid / jsonschema all errors": lambda: list(js.iter_errors(loads(valid))),
        "invalid / ours": lambda: form.validate(invalid, CONTEXT),
        "invalid / jsonschema all errors": lambda: list(js.iter_errors(loads(invalid))),
    }
    meta = {
        "valid_bytes": len(valid),
        "invalid_bytes": len(invalid),
        "budget_lines": 20,
        "errors_ours": [(e.path, e.message) for e in ours_invalid.errors],
    }
    return cases, meta


def compile_times(reps: int) -> list[float]:
    """Milliseconds to compile a fresh 200-field schema (the cache is bypassed)."""
    times = []
    for rep in range(reps):
        schema = generated_schema(200, version=rep + 1)
        started = time.perf_counter()
        CompiledForm(schema)
        times.append((time.perf_counter() - started) * 1000)
    return times


def render_times(reps: int) -> list[float] | None:
    render = render_hook()
    if render is None:
        return None
    schema = generated_schema(200)
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        render(schema)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="CPU seconds per case per repetition")
    parser.add_argument("--quick", action="store_true", help="2 repetitions of 0.1 s: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.seconds = 2, 0.1

    cases, meta = build_cases()
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for rep in range(args.reps):
        for name, fn in cases.items():
            rates[name].append(measure(fn, args.seconds))
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)

    def ratio(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rates[a], rates[b], strict=True)]

    versions = {
        name: _version(name)
        for name in ("msgspec", "common-expression-language", "jsonschema", "fastjsonschema")
    }
    print(f"# Form validation benchmark ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(f"Python {sys.version.split()[0]}; " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    print(
        f"Document: marketing-activity, {meta['budget_lines']} budget lines, {meta['valid_bytes']:,} bytes JSON; "
        f"invalid variant {meta['invalid_bytes']:,} bytes with 4 planted errors. "
        f"{args.reps} reps x {args.seconds} s of thread CPU time per case, interleaved.\n"
    )
    print("| document / validator | validations/s median (min..max) | us/validation |")
    print("|---|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {summary(values)} | {1e6 / statistics.median(values):.1f} |")
    print("\n| ratio (within each rep) | median (min..max) | target |")
    print("|---|---|---|")
    print(
        f"| ours vs fastjsonschema | {ratio_summary(ratio('valid / ours', 'valid / fastjsonschema'))} | >= 1.5x |"
    )
    print(
        f"| ours vs jsonschema | {ratio_summary(ratio('valid / ours', 'valid / jsonschema all errors'))} | >= 20x |"
    )
    cold_vs_fjs = ratio("valid / ours, cold CEL memo", "valid / fastjsonschema")
    print(f"| ours (cold CEL memo) vs fastjsonschema | {ratio_summary(cold_vs_fjs)} | |")
    invalid_ratio = ratio("invalid / ours", "invalid / jsonschema all errors")
    print(f"| invalid: ours vs jsonschema, all errors | {ratio_summary(invalid_ratio)} | |")

    compile_ms = compile_times(3 if args.quick else 9)
    print(
        f"\nCompile a generated 200-field schema: median {statistics.median(compile_ms):.1f} ms "
        f"(min {min(compile_ms):.1f}, max {max(compile_ms):.1f}; target < 50 ms)."
    )
    rendered = render_times(3 if args.quick else 9)
    if rendered is None:
        print("Render the 200-field schema: not measured (no renderer yet; see render_hook).")
    else:
        print(f"Render the 200-field schema: median {statistics.median(rendered):.1f} ms.")
    print("\nErrors ours reports on the invalid document:")
    for path, message in meta["errors_ours"]:
        print(f"- {path}: {message}")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
