"""Intent decisions/s: the compiled policy (masque.intent) vs a naive fnmatch loop and one joined regex.

    python bench/intent.py [--seconds 1.0] [--intents 2000]

The naive peer is what seed 004's `matches_patterns(intent, allowed, denied)` amounts to, on today's
definition: refuse text that is not one line of valid text, normalise the intent and each pattern, then
`fnmatch.fnmatch` them one by one, denied first, and denied patterns also against the intent's other
readings (invisibles as word breaks; skeletons, against the patterns' skeletons). A second naive figure
prepares the patterns once (a stronger peer). The strong peer is what a careful engineer would write
without masque: one regex made by joining `fnmatch.translate` of every pattern, denied first, each
alternative a named group (the winning pattern is `lastgroup`), compiled once; denied patterns get one
more joined regex for the other readings and one for their skeletons. What masque adds beyond it is
bucketing the alternatives by first character and an ASCII fast path. Every contender must reach the
same decisions; the script checks that before timing. Contenders run interleaved, round after round,
and the best round counts, so load from other processes on a shared machine skews them alike.

Two views: end to end (normalise + match + the explained `Decision`), and matching alone on intents
normalised beforehand (what compiling the globs into one regex buys). Both are printed per policy
group, because the naive loop costs O(patterns) while the compiled matcher stays nearly flat.
"""

from __future__ import annotations

import argparse
import fnmatch
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from masque.masques.intent import Policy, normalize
from masque.masques.intent_text import boundary_problem, readings, skeleton_globs
from masque.masques.registry import available
from masque.model import Intent

VERBS = ["implement", "test", "deploy", "debug", "review", "delete", "refactor", "explain", "upgrade", "rush"]
OBJECTS = ["the parser", "production database", "monitoring stack", "login flow", "backups", "docs", "ci"]
Decide = Callable[[str], object]


def shipped_policies() -> list[Intent]:
    """The intent policies of the shipped personas (found and validated through the registry)."""
    import os

    os.environ.setdefault("MASQUE_PATH", str(Path(__file__).resolve().parent.parent / "personas"))
    return [e.masque.intent for e in available() if e.masque is not None and e.active]


def synthetic_policy(rng: random.Random, size: int) -> Intent:
    """A bigger policy: `size` allowed globs with ?, [] and several stars, plus five denied ones."""
    shapes = ["{v} *", "{v} * for ?*", "{v} the [a-m]*", "{v} *{o}", "{v} {o} *"]
    allowed = tuple(
        rng.choice(shapes).format(v=f"{rng.choice(VERBS)}{i // len(VERBS) or ''}", o=rng.choice(OBJECTS))
        for i in range(size)
    )
    denied = (*(f"* {o}*" for o in rng.sample(OBJECTS, k=3)), "rush *", "* without backup*")
    return Intent(allowed, denied)


def make_intents(rng: random.Random, n: int) -> list[str]:
    """A realistic mix: plain, shouting, padded, zero-width tricks, fullwidth, long free text."""
    out = []
    for i in range(n):
        text = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        kind = i % 10
        if kind == 1:
            text = text.upper()
        elif kind == 2:
            text = f"  {text}\t for issue #{rng.randint(1, 999)} "
        elif kind == 3:
            text = text.replace(" ", " \u200b", 1)
        elif kind == 4:
            text = "ｄｅｐｌｏｙ " + text
        elif kind == 5:
            text += " without backup because the change window is short and the person asked twice"
        out.append(text)
    return out


def _naive_decide(
    text: str,
    denied: list[tuple[str, str, tuple[str, ...]]],
    allowed: list[tuple[str, str]],
) -> tuple[bool, str | None]:
    """(pattern as written, normal form, skeletons) of each denied pattern; (as written, normal) allowed."""
    if boundary_problem(text) is not None:
        return False, None
    normalized, plain, skeletons = readings(text)
    if not normalized:
        return False, None
    for reading in (normalized, *plain):
        for pattern, norm, _ in denied:
            if fnmatch.fnmatch(reading, norm):
                return False, pattern
    for reading in skeletons:
        for pattern, _, forms in denied:
            if any(fnmatch.fnmatch(reading, form) for form in forms):
                return False, pattern
    for pattern, norm in allowed:
        if fnmatch.fnmatch(normalized, norm):
            return True, pattern
    return False, None


def naive(intent: Intent) -> Decide:
    """The naive loop: prepare every pattern on each call, fnmatch, denied first (on every reading)."""

    def decide(text: str) -> tuple[bool, str | None]:
        denied = [(p, normalize(p), skeleton_globs(p)) for p in intent.denied]
        return _naive_decide(text, denied, [(p, normalize(p)) for p in intent.allowed])

    return decide


def prenormalised(intent: Intent) -> Decide:
    """The stronger naive peer: patterns prepared once, fnmatch loop per decision."""
    denied = [(p, normalize(p), skeleton_globs(p)) for p in intent.denied]
    allowed = [(p, normalize(p)) for p in intent.allowed]

    def decide(text: str) -> tuple[bool, str | None]:
        return _naive_decide(text, denied, allowed)

    return decide


def joined(globs: list[str]) -> Callable[[str], int | None]:
    """Index of the first glob matching all of the text: one regex of the translated globs, in order.

    Each alternative is a named group; the outer group closes last, so `lastgroup` names the winner
    even where `fnmatch.translate` makes groups of its own (Python 3.10).
    """
    if not globs:
        return lambda text: None
    regex = re.compile("|".join(f"(?P<p{i}>{fnmatch.translate(g)})" for i, g in enumerate(globs)))

    def first(text: str) -> int | None:
        m = regex.match(text)
        return None if m is None or m.lastgroup is None else int(m.lastgroup[1:])

    return first


def strong(intent: Intent) -> Decide:
    """The strong peer, end to end: the same readings as the naive loop, each matched by one joined regex."""
    denied = [(p, normalize(p)) for p in intent.denied]
    allowed = [(p, normalize(p)) for p in intent.allowed]
    both = joined([n for _, n in denied] + [n for _, n in allowed])
    deny_only = joined([n for _, n in denied])
    forms = [(form, p) for p in intent.denied for form in skeleton_globs(p)]
    deny_skeleton = joined([f for f, _ in forms])
    n_denied = len(denied)

    def decide(text: str) -> tuple[bool, str | None]:
        if boundary_problem(text) is not None:
            return False, None
        normalized, plain, skeletons = readings(text)
        if not normalized:
            return False, None
        index = both(normalized)
        if index is not None and index < n_denied:
            return False, denied[index][0]
        for reading in plain:
            found = deny_only(reading)
            if found is not None:
                return False, denied[found][0]
        for reading in skeletons:
            found = deny_skeleton(reading)
            if found is not None:
                return False, forms[found][1]
        if index is not None:
            return True, allowed[index - n_denied][0]
        return False, None

    return decide


def regex_only(intent: Intent) -> Decide:
    """Matching alone, strong peer: one joined regex (denied first) over an already-normalised intent."""
    outcomes = [(False, p) for p in intent.denied] + [(True, p) for p in intent.allowed]
    first = joined([normalize(p) for p in (*intent.denied, *intent.allowed)])

    def match(normalized: str) -> tuple[bool, str] | None:
        index = first(normalized)
        return None if index is None else outcomes[index]

    return match


def fnmatch_only(intent: Intent) -> Decide:
    """Matching alone, naive: fnmatch over normalised patterns of an already-normalised intent."""
    denied = [(p, normalize(p)) for p in intent.denied]
    allowed = [(p, normalize(p)) for p in intent.allowed]

    def match(normalized: str) -> tuple[bool, str] | None:
        for pattern, norm in denied:
            if fnmatch.fnmatch(normalized, norm):
                return False, pattern
        for pattern, norm in allowed:
            if fnmatch.fnmatch(normalized, norm):
                return True, pattern
        return None

    return match


def interleaved(contenders: dict[str, tuple[list[Decide], list[str]]], seconds: float) -> dict[str, float]:
    """Best decisions/s of each contender; rounds alternate between them until the budget is spent."""
    best = dict.fromkeys(contenders, 0.0)
    deadline = time.perf_counter() + seconds * len(contenders)
    rounds = 0
    while rounds < 3 or time.perf_counter() < deadline:
        rounds += 1
        for name, (deciders, texts) in contenders.items():
            start = time.perf_counter()
            for decide in deciders:
                for text in texts:
                    decide(text)
            elapsed = time.perf_counter() - start
            best[name] = max(best[name], len(deciders) * len(texts) / elapsed)
    return best


def check_agreement(policies: list[Intent], intents: list[str]) -> None:
    """A fast wrong matcher is worth nothing: all contenders must agree on every decision."""
    for intent in policies:
        compiled, slow, peer, best = Policy.compile(intent), naive(intent), prenormalised(intent), strong(intent)
        loop, one = fnmatch_only(intent), regex_only(intent)
        for text in intents:
            d = compiled.decide(text)
            assert (d.allowed, d.pattern) == slow(text) == peer(text) == best(text), (intent, text, d)
            n = normalize(text)
            if n:
                assert compiled.match(n) == loop(n) == one(n), (intent, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per contender and group")
    parser.add_argument("--intents", type=int, default=2000)
    args = parser.parse_args()

    rng = random.Random(42)
    groups = {
        "shipped personas": shipped_policies(),
        "15-35 patterns": [synthetic_policy(rng, n) for n in (10, 20, 30)],
        "100 patterns": [synthetic_policy(rng, 95)],
    }
    intents = make_intents(rng, args.intents)
    every = [p for g in groups.values() for p in g]
    start = time.perf_counter()
    for intent in every:
        Policy.compile(intent)
    compile_ms = (time.perf_counter() - start) * 1000
    check_agreement(every, intents)

    normalized = [normalize(t) for t in intents]
    print(
        f"intents: {len(intents)} (10% zero-width, 10% fullwidth, 10% shouting, 10% padded); "
        f"compile all {len(every)} policies: {compile_ms:.1f} ms; python {sys.version.split()[0]}"
    )
    print(
        "ratio = masque's rate / the peer's (above 1: masque is faster). naive: patterns normalised per call + "
        "fnmatch loop; pre-norm: prepared once + fnmatch loop; 1 regex: prepared once + one joined "
        "fnmatch.translate regex (the strong peer). All three peers run masque's readings pipeline on every "
        "intent, which masque's decide() skips for plain ASCII: match() compares the matchers alone."
    )
    print(
        f"{'policy group':18} {'patterns':>9} | {'decide()':>10} {'naive':>8} {'ratio':>6} {'pre-norm':>8} "
        f"{'ratio':>6} {'1 regex':>8} {'ratio':>6} | {'match()':>10} {'fnmatch':>9} {'ratio':>6} "
        f"{'1 regex':>9} {'ratio':>6}   (decisions/s)"
    )
    for name, policies in groups.items():
        sizes = sorted(len(p.allowed) + len(p.denied) for p in policies)
        e2e = interleaved(
            {
                "compiled": ([Policy.compile(p).decide for p in policies], intents),
                "naive": ([naive(p) for p in policies], intents),
                "peer": ([prenormalised(p) for p in policies], intents),
                "regex": ([strong(p) for p in policies], intents),
            },
            args.seconds,
        )
        only = interleaved(
            {
                "compiled": ([Policy.compile(p).match for p in policies], normalized),
                "fnmatch": ([fnmatch_only(p) for p in policies], normalized),
                "regex": ([regex_only(p) for p in policies], normalized),
            },
            args.seconds,
        )
        span = f"{sizes[0]}-{sizes[-1]}" if sizes[0] != sizes[-1] else str(sizes[0])
        e, o = e2e["compiled"], only["compiled"]
        print(
            f"{name:18} {span:>9} | {e:>10,.0f} {e2e['naive']:>8,.0f} {e / e2e['naive']:>5.1f}x "
            f"{e2e['peer']:>8,.0f} {e / e2e['peer']:>5.1f}x {e2e['regex']:>8,.0f} {e / e2e['regex']:>5.1f}x | "
            f"{o:>10,.0f} {only['fnmatch']:>9,.0f} {o / only['fnmatch']:>5.1f}x "
            f"{only['regex']:>9,.0f} {o / only['regex']:>5.1f}x"
        )
    # The full Unicode pipeline (denial readings, skeletons) runs only for non-ASCII text.
    ascii_only = [t for t in intents if t.isascii()]
    non_ascii = [t for t in intents if not t.isascii()]
    print(f"decide() by script (decisions/s): {len(ascii_only)} ASCII intents, {len(non_ascii)} non-ASCII")
    for name, policies in groups.items():
        deciders = [Policy.compile(p).decide for p in policies]
        rates = interleaved({"ascii": (deciders, ascii_only), "other": (deciders, non_ascii)}, args.seconds / 2)
        print(f"{name:18} ASCII {rates['ascii']:>11,.0f}   non-ASCII {rates['other']:>11,.0f}")


if __name__ == "__main__":
    main()
