"""Intent text: the boundary check, the normal form policies match, and the readings a denial also checks.

The rule (docs/registry.md, "The intent policy"):

1. **Boundary.** An intent is one line of valid text. Lone surrogates (what Python makes of undecodable
   bytes in argv, `surrogateescape`) refuse it as `invalid_utf8`; C0/C1 controls (tab, CR, LF, NEL, ...)
   and U+2028/U+2029 refuse it as `invalid`: nothing downstream (the rendered prompt, `masque sessions`
   rows, shell exports) ever sees a line break it did not write itself.
2. **Normal form** (`normalize`, what allowed and denied globs match): characters that render as blank
   (White_Space, U+2800 braille blank, the Hangul fillers U+115F/U+1160/U+3164/U+FFA0) become a space;
   invisible characters (Default_Ignorable_Code_Point: U+034F, variation selectors, tags, ZW*, bidi
   controls, ...; plus every other format or control character) are removed; NFKC; case-fold; NFKC;
   whitespace collapses to one space and is trimmed. Iterated to a fixed point, so idempotent.
3. **Denial readings.** A denied glob is also tried against other readings of the same text, and any
   match denies: the invisible characters read as word breaks instead of nothing, and the *skeleton*
   of each reading: NFD, combining marks (Mn/Me) dropped, look-alike characters replaced by their ASCII
   prototype from Unicode's confusables.txt (UTS #39; `masque.masques.confusables`), punctuation and symbols at
   the edges of words read as word breaks. Denied globs get the same treatment (wildcards and bracket
   expressions kept as they are). Readings only ever add denials: an intent is *allowed* only through
   its normal form, so text in any script is never mangled into an allowed match.

Non-ASCII work happens only for non-ASCII text; printable ASCII takes a short path.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15; stable since 2015 except for
# unassigned code points inside these ranges). The Hangul fillers are DI but render as a blank; they
# are mapped to a space before this set is applied.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# Not White_Space, yet drawn as an empty cell: read as a space.
BLANKS = "\u115f\u1160\u2800\u3164\uffa0"
_BLANK_RE = re.compile(f"[{BLANKS}]")


def is_default_ignorable(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _DEFAULT_IGNORABLE)


def _ranges_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(re.escape(chr(lo)) + ("-" + re.escape(chr(hi)) if hi > lo else "") for lo, hi in ranges)


# Invisible characters: DI (minus blanks, handled first) plus every Cc/Cf that is not whitespace. Cc/Cf
# beyond DI and ASCII are found lazily as characters are first seen (a full Unicode scan at import would
# cost ~0.2 s of every cold start); the class only ever grows to the ~240 Cc/Cf code points.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf"})
_FOUND: set[str] = {chr(c) for c in [*range(0x20), 0x7F] if not chr(c).isspace()}
_CLASSIFIED: set[str] = {chr(c) for c in range(0x80)}
_MAX_CLASSIFIED = 1 << 16  # bound memory under hostile input; unclassified chars are just rechecked
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_DI_CLASS = _ranges_class(_DEFAULT_IGNORABLE)


def _invisible_class() -> re.Pattern[str]:
    found = "".join(re.escape(c) for c in sorted(_FOUND) if not is_default_ignorable(c))
    return re.compile(f"[{_DI_CLASS}{found}]")


_invisible_re = _invisible_class()
_ASCII_INVISIBLE = re.compile("[" + "".join(re.escape(c) for c in sorted(_FOUND)) + "]")


def _invisible(text: str) -> re.Pattern[str]:
    """The regex of invisible characters, grown first by any Cc/Cf in `text` not classified yet."""
    global _invisible_re
    if text.isprintable():  # no Cc or Cf at all (the printable invisibles are all in the DI ranges)
        return _invisible_re
    fresh = set(_NON_ASCII.findall(text)).difference(_CLASSIFIED)
    if fresh:
        found = {c for c in fresh if not c.isspace() and unicodedata.category(c) in _INVISIBLE_CATEGORIES}
        if found - _FOUND:
            _FOUND.update(found)
            _invisible_re = _invisible_class()
        if len(_CLASSIFIED) < _MAX_CLASSIFIED:
            _CLASSIFIED.update(fresh)
    return _invisible_re


def _blank_and_strip(text: str, invisible_as: str) -> str:
    if text.isascii():
        return _ASCII_INVISIBLE.sub(invisible_as, text)
    text = _BLANK_RE.sub(" ", text)
    stripped = _invisible_re.sub(invisible_as, text)
    if stripped.isprintable():  # no Cc/Cf left: the known invisibles were all there were
        return stripped
    return _invisible(text).sub(invisible_as, text)


def _one_pass(text: str, invisible_as: str) -> str:
    # Strip first: removing a zero-width joiner can bring a combining mark next to its base, and NFKC
    # must see that pair. NFKC again after casefold, because casefolding can leave unnormalised text.
    text = unicodedata.normalize("NFKC", _blank_and_strip(text, invisible_as))
    text = unicodedata.normalize("NFKC", text.casefold())
    return " ".join(_blank_and_strip(text, invisible_as).split())


_DI_OR_BLANK = re.compile(f"[{_DI_CLASS}{BLANKS}]")


def _is_fixed_point(text: str) -> bool:
    """True when another pass would change nothing (for text that is already collapsed).

    isprintable() rules out Cc and Cf (so stripping is a no-op but for the printable DI characters and
    the blanks, checked next) and every whitespace but " ".
    """
    return (
        text.isprintable()
        and _DI_OR_BLANK.search(text) is None
        and text.casefold() == text
        and unicodedata.is_normalized("NFKC", text)
    )


def _fixed_point(text: str, invisible_as: str = "") -> str:
    """Passes until nothing changes (a few compatibility characters need two)."""
    result = _one_pass(text, invisible_as)
    if _is_fixed_point(result):
        return result
    for _ in range(4):
        again = _one_pass(result, invisible_as)
        if again == result:
            break
        result = again
    return result


def normalize(text: str) -> str:
    """Canonical form for matching: blanks are spaces, invisibles removed, NFKC, case-folded, collapsed.

    Idempotent: `normalize(normalize(x)) == normalize(x)`.
    """
    if text.isascii():
        # NFKC is the identity on ASCII and casefold() equals lower().
        if text.isprintable():  # no control characters; the only whitespace is " "
            lowered = text.lower()
            if "  " in lowered or lowered[:1] == " " or lowered[-1:] == " ":
                return " ".join(lowered.split())
            return lowered
        return " ".join(_ASCII_INVISIBLE.sub("", text).lower().split())
    return _fixed_point(text)


# --- the boundary ---------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_OR_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # Cc, Zl, Zp


def boundary_problem(text: str) -> tuple[str, str] | None:
    """("invalid_utf8" | "invalid", what) when `text` is not one line of valid text, else None."""
    if text.isprintable():  # rules out Cc, Zl, Zp and surrogates at once
        return None
    bad = _SURROGATE.search(text)
    if bad is not None:
        raw = escape_undecodable(text[bad.start() : bad.start() + 8])
        return "invalid_utf8", f"the intent is not valid UTF-8 (undecodable bytes at: {raw})"
    control = _LINE_OR_CONTROL.search(text)
    if control is not None:
        char = control.group()
        name = unicodedata.name(char, "") or {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "TAB"}.get(char, "")
        return "invalid", (
            f"the intent contains a line break or control character (U+{ord(char):04X}"
            f"{' ' + name if name else ''} at position {control.start() + 1}); state it on one line"
        )
    return None


def escape_undecodable(text: str) -> str:
    """`text` with undecodable bytes (lone surrogates from surrogateescape) as `\\xNN` escapes."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_DISPLAY_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """`text` safe to show on one line: controls, line breaks and bidi controls as visible escapes.

    For intents recorded before the boundary check (or imported): a rendered prompt or a table row
    must never gain a line, or reorder itself, because of what an intent contains.
    """
    text = escape_undecodable(text)
    if text.isprintable():
        return text
    return _DISPLAY_UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


# --- the denial readings --------------------------------------------------------------------------


_ASCII_EDGE = "".join(chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum())


def ascii_skeleton(normal: str) -> str:
    """The skeleton of normalised ASCII text: punctuation and symbols at word edges read as breaks."""
    if normal.replace(" ", "").isalnum():  # the common case: no punctuation at all (a C-speed check)
        return normal
    return " ".join(w for w in (w.strip(_ASCII_EDGE) for w in normal.split()) if w)


def _is_edge(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def _strip_edges(word: str) -> str:
    if word.isascii():
        return word.strip(_ASCII_EDGE)
    start, end = 0, len(word)
    while start < end and _is_edge(word[start]):
        start += 1
    while end > start and _is_edge(word[end - 1]):
        end -= 1
    return word[start:end]


@lru_cache(maxsize=1)
def _skeleton_table() -> dict[int, str | None]:
    """One str.translate table: look-alikes to their ASCII prototype, combining marks (Mn, Me) deleted.

    A dict lookup per character is several times faster than a regex class of ~300 mark ranges. Marks
    are added as characters are first seen (`_drop_marks_and_look_alikes`): scanning Unicode for them
    up front would cost ~30 ms of the first non-ASCII decision in every process.
    """
    from masque.masques.confusables import BY_PROTOTYPE

    return {ord(c): prototype for prototype, chars in BY_PROTOTYPE.items() for c in chars}


_SEEN_FOR_MARKS: set[str] = set()


@lru_cache(maxsize=1)
def _divergent() -> frozenset[str]:
    """Look-alikes whose prototype is not what NFKC and folding make of them (Roman numeral Ⅰ -> l)."""
    from masque.masques.confusables import BY_PROTOTYPE

    return frozenset(
        c
        for prototype, chars in BY_PROTOTYPE.items()
        for c in chars
        if unicodedata.normalize("NFKC", c).casefold() != prototype
    )


def _drop_marks_and_look_alikes(text: str) -> str:
    text = unicodedata.normalize("NFD", text)
    if text.isascii():
        return text
    table = _skeleton_table()
    fresh = set(text).difference(_SEEN_FOR_MARKS)
    if fresh:
        for c in fresh:
            if unicodedata.category(c) in ("Mn", "Me"):
                table[ord(c)] = None
        if len(_SEEN_FOR_MARKS) < _MAX_CLASSIFIED:
            _SEEN_FOR_MARKS.update(fresh)
    return text.translate(table)


def _skeleton(raw: str, fold_first: bool) -> str:
    """Marks dropped, look-alikes to their ASCII prototype, NFKC, folded, edge punctuation as word breaks.

    `raw` is a reading before NFKC and case folding, as UTS #39 skeletons are defined on NFD text:
    confusables.txt maps compatibility characters (Roman numeral Ⅰ -> l) and some capitals (Greek Ι
    looks like l, ι like i) differently from what NFKC and folding make of them, so the look-alike
    table goes first, and both orders of folding are read (`fold_first`).
    """
    if raw.isascii():  # no marks, no look-alikes: only the edges
        return ascii_skeleton(" ".join(raw.lower().split()))
    text = _drop_marks_and_look_alikes(raw.casefold() if fold_first else raw)
    folded = unicodedata.normalize("NFKC", text).casefold()
    if folded != text and not folded.isascii():  # again for what NFKC and folding produced
        text = _drop_marks_and_look_alikes(_blank_and_strip(folded, ""))
        folded = unicodedata.normalize("NFKC", text).casefold()
    text = folded
    return " ".join(w for w in (_strip_edges(w) for w in text.split()) if w)


def readings(text: str, normal: str | None = None) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(normal form, other plain readings, skeleton readings) of `text`: distinct, never empty.

    The skeletons of ASCII text without edge punctuation equal its normal form; they still count, as
    denied globs can have skeletons that differ from their normal form (`rm -rf *`, a Cyrillic е).

    Plain readings are matched against the normal form of denied globs (`normalize`), skeleton
    readings against their skeletons (`skeleton_globs`). `normal`: `normalize(text)`, if known.
    """
    normal = normalize(text) if normal is None else normal
    if text.isascii() and text.isprintable():
        edges = ascii_skeleton(normal)
        return normal, (), ((edges,) if edges else ())
    plain: list[str] = []
    raws = [_blank_and_strip(text, "")]
    if _invisible(text).search(text):
        broken_raw = _blank_and_strip(text, " ")
        if broken_raw.split() != raws[0].split():  # else invisibles as word breaks read the same
            broken = _fixed_point(text, " ")
            if broken != normal:
                plain.append(broken)
                raws.append(broken_raw)
    skeletons: list[str] = []
    if normal.isascii() and all(_divergent().isdisjoint(r) and _divergent().isdisjoint(r.casefold()) for r in raws):
        # Every character NFKC made ASCII, and none is a look-alike of something else: the skeletons
        # are those of the ASCII readings (fullwidth text, zero-width tricks), computed cheaply.
        for reading in (normal, *plain):
            skeleton = ascii_skeleton(reading)
            if skeleton and skeleton not in skeletons:
                skeletons.append(skeleton)
        return normal, tuple(plain), tuple(skeletons)
    for raw in raws:
        for fold_first in (False, True) if raw.casefold() != raw else (False,):
            skeleton = _skeleton(raw, fold_first)
            if skeleton and skeleton not in skeletons:
                skeletons.append(skeleton)
    return normal, tuple(plain), tuple(skeletons)


# Glob syntax survives the skeleton as private-use placeholders (category Co: no mark, no look-alike,
# not punctuation, so a wildcard next to punctuation keeps it, as a letter would).
_PLACEHOLDER = 0xF0000
_PLACEHOLDER_RE = re.compile("[\U000f0000-\U000fffff]")


def _glob_tokens(glob: str) -> list[str]:
    """`glob` split into literal characters, `*`, `?` and whole bracket expressions (fnmatch's rules)."""
    tokens: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "[":
            j = i + 1
            if j < n and glob[j] == "!":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j < n:
                tokens.append(glob[i : j + 1])
                i = j + 1
                continue
        tokens.append(c)
        i += 1
    return tokens


def skeleton_glob(glob: str, fold_first: bool = False) -> str:
    """The skeleton of a glob: literal text as `readings` treats intents, wildcards and brackets kept."""
    if _PLACEHOLDER_RE.search(glob):
        return normalize(glob)
    specials: list[str] = []
    literal = []
    for token in _glob_tokens(glob):
        if token in ("*", "?") or len(token) > 1:
            literal.append(chr(_PLACEHOLDER + len(specials)))
            kept = token if len(token) == 1 else unicodedata.normalize("NFKC", token).casefold()
            specials.append(kept)
        else:
            literal.append(token)
    joined = _blank_and_strip("".join(literal), "")
    # ASCII globs as `_skeleton` reads ASCII (placeholders are neither edges nor look-alikes).
    text = ascii_skeleton(" ".join(joined.lower().split())) if glob.isascii() else _skeleton(joined, fold_first)
    return _PLACEHOLDER_RE.sub(lambda m: specials[ord(m.group()) - _PLACEHOLDER], text)


def skeleton_globs(glob: str) -> tuple[str, ...]:
    """The distinct skeletons of a glob (capitals can read two ways; see `_skeleton`)."""
    first = skeleton_glob(glob, False)
    second = skeleton_glob(glob, True)
    return (first,) if first == second else (first, second)
