"""Camera language: the pans, tilts, zooms, dollies, orbits, still and handheld cameras, tempo and loops a
text asks for, in Chinese or English, found with regular expressions and cut out of the clause so that
"镜头向左" is read as a camera move and not as the subject moving left.

Other parts of i2v (the advisor) ask `camera_moves` without loading the clause parser: this module needs only
the tag vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from i2v.refine.base import CAMERA_TAGS
from i2v.refine.rules.text import CJK_RE

CAMERA_PHRASES: dict[str, str] = {
    "pan_left": "camera panning to the left", "pan_right": "camera panning to the right",
    "tilt_up": "camera tilting up", "tilt_down": "camera tilting down",
    "zoom_in": "camera zooming in", "zoom_out": "camera zooming out",
    "dolly_in": "camera pushing in", "dolly_out": "camera pulling back",
    "orbit_left": "camera orbiting to the left", "orbit_right": "camera orbiting to the right",
    "static_camera": "static camera", "handheld": "handheld camera",
    "slow_motion": "slow motion", "fast_motion": "fast motion", "timelapse": "time-lapse", "loop": "seamless loop",
}
#: Tags whose phrase takes a manner adverb ("camera slowly panning to the left").
MOVING_TAGS = frozenset(CAMERA_TAGS - {"static_camera", "handheld"})


@dataclass
class CameraHit:
    """One camera instruction found in the text."""

    tag: str | None  # None: camera language without a tag (a pan with no direction, a close-up)
    phrase: str
    start: int
    note: str = ""
    inline: bool = False  # already said in English text we keep: tag it, do not say it twice


_CAM = "(?:镜头|摄像机|摄影机|相机|机位|画面)"
_CN_MANNER = "(?:(?:慢慢|缓缓|缓慢|徐徐|轻轻|稍稍|微微|快速|迅速|急速|平稳|匀速|逐渐|渐渐|慢|快)地?)?"
_PREP = "(?:向|往|朝)"

# (pattern, kind, needs_context). A pattern that needs context only counts when the clause names the camera
# (镜头, 画面, ...) or holds nothing else: "放大" alone is a zoom, "瞳孔放大" is a pupil dilating.
_CN_CAMERA_RULES: list[tuple[str, str, bool]] = [
    (rf"{_CAM}(?:保持|始终)?(?:完全)?(?:固定不动|不动|固定|静止|不移动|不要动|不要移动|稳定)|固定(?:的)?(?:镜头|机位)"
     rf"|(?:不要|别|不)(?:移动|动|晃动)(?:的)?{_CAM}"
     r"|静止(?:的)?镜头|定镜(?:头)?|三脚架(?:拍摄)?", "static_camera", False),
    (rf"手持(?:镜头|拍摄|摄影|摄像|相机|风格|感)|{_CAM}(?:轻微)?(?:晃动|抖动)|晃动(?:的)?镜头", "handheld", False),
    (r"手持", "handheld", True),
    (r"慢动作|慢镜头|(?<!慢)慢放(?!大)|升格(?:拍摄)?|超慢速?", "slow_motion", False),
    (r"快动作|快进|快放|加速播放|倍速(?:播放)?|快镜头", "fast_motion", False),
    (r"延时摄影|延时拍摄|延时|缩时摄影|缩时", "timelapse", False),
    (r"无缝循环|循环播放|循环动画|循环", "loop", False),
    (rf"{_CAM}?{_CN_MANNER}(?:[顺逆]时针)?(?:{_PREP}?[左右])?(?:360度|三百六十度)?(?:环绕拍摄|环拍|环绕镜头)"
     rf"(?:{_PREP}?[左右])?", "orbit", False),
    (rf"{_CAM}{_CN_MANNER}(?:[顺逆]时针)?(?:{_PREP}?[左右])?(?:360度|三百六十度)?(?:环绕|围绕|绕圈|旋转|绕)"
     rf"(?:{_PREP}?[左右])?", "orbit", False),
    (rf"(?:[顺逆]时针)?(?:{_PREP}?[左右])?(?:360度|三百六十度)?环绕(?:{_PREP}?[左右])?", "orbit", True),
    (r"[顺逆]时针(?:旋转|转动)?", "orbit", True),
    (r"俯拍|俯视镜头|俯视角度|俯角", "tilt_down", False),
    (r"仰拍|仰视镜头|仰视角度|仰角", "tilt_up", False),
    (r"俯视|俯瞰", "tilt_down", True),
    (r"仰视", "tilt_up", True),
    (rf"{_CAM}?{_CN_MANNER}(?:推近|推进|推镜头|推镜|前推|慢推|向前推)", "dolly_in", False),
    (rf"{_CAM}{_CN_MANNER}(?:推向|推)", "dolly_in", False),
    (rf"{_CAM}?{_CN_MANNER}(?:拉近|变焦推近|变焦拉近|变焦放大)", "zoom_in", False),
    (rf"{_CAM}?{_CN_MANNER}(?:放大|变焦)", "zoom_in", True),
    (rf"{_CAM}?{_CN_MANNER}(?:拉远|变焦拉远)", "zoom_out", False),
    (rf"{_CAM}?{_CN_MANNER}缩小", "zoom_out", True),
    (rf"{_CAM}?{_CN_MANNER}(?:拉镜头|后拉|向后拉|拉出)", "dolly_out", False),
    (rf"{_CAM}?{_CN_MANNER}(?:拉开|后退|后移)", "dolly_out", True),
    # The camera moving in a direction: 镜头向左(平移), 镜头缓缓向上摇, 镜头移向右边.
    (rf"{_CAM}{_CN_MANNER}(?:从[左右上下前后](?:边|方)?)?{_PREP}([左右上下前后])(?:边|方)?{_CN_MANNER}"
     r"(?:平移|横移|移动|移|摇动|平摇|摇|推|拉|转)?", "direction", False),
    (rf"{_CAM}{_CN_MANNER}(?:平移|横移|移动|移|摇)(?:{_PREP}|到)([左右上下])(?:边|方)?", "direction", False),
    (rf"{_CAM}?{_CN_MANNER}(?:从[左右](?:边|方)?)?(?:{_PREP}?([左右]))?(?:边|方)?{_CN_MANNER}(?:平移|横移|平摇)"
     rf"(?:(?:{_PREP}|到)([左右])(?:边|方)?)?", "pan", False),
    (rf"{_CAM}?{_CN_MANNER}(?<![左右上下])([左右上下])(?:移|摇)(?![摆晃动左右上下])", "direction", False),
    (rf"{_CAM}(?:跟随|跟拍|跟着)|跟拍|跟随拍摄", "text:tracking shot", False),
    (r"航拍", "text:aerial shot", False),
    (r"特写(?:镜头)?", "text:close-up", False),
    (r"远景|全景", "text:wide shot", False),
    (r"第一人称视角|主观视角", "text:first-person view", False),
]
_CN_CAMERA = [(re.compile(p), kind, ctx) for p, kind, ctx in _CN_CAMERA_RULES]
CN_CAMERA_CONTEXT = re.compile(_CAM)

_EN_MANNER_WORD = r"(?:(?:slowly|gently|smoothly|quickly|slow|smooth|gentle|quick|steadily)\s+)?"
_EN_CAMERA_RULES: list[tuple[str, str]] = [
    (r"\b(?:static|still|fixed|locked[-\s]?off|locked|stationary|steady|tripod|stable)\s+(?:camera|shot|cam|frame)\b",
     "static_camera"),
    (r"\bcamera\s+(?:is\s+|stays\s+|remains\s+|kept\s+|held\s+)?(?:completely\s+|perfectly\s+)?"
     r"(?:still|static|fixed|stationary|locked(?:[-\s]off)?|steady)\b", "static_camera"),
    (r"\b(?:no|without)\s+camera\s+(?:movement|motion|moves)\b", "static_camera"),
    (r"\bcamera\s+(?:does\s*n[o']?t|does\s+not|never)\s+move\b|\bdon'?t\s+move\s+the\s+camera\b", "static_camera"),
    (r"\blow[-\s]angle(?:\s+(?:shot|view))?\b|\bworm'?s[-\s]eye\s+view\b", "tilt_up"),
    (r"\bhigh[-\s]angle(?:\s+(?:shot|view))?\b|\bbird'?s[-\s]eye\s+view\b|\btop[-\s]down\s+(?:shot|view)\b", "tilt_down"),
    (r"\bhand[-\s]?held(?:\s+(?:camera|shot|footage|style))?\b|\bshaky[-\s]?cam(?:era)?\b", "handheld"),
    (r"\bslow[-\s]?mo(?:tion)?\b", "slow_motion"),
    (r"\bfast[-\s]?motion\b|\bsped[-\s]up\b|\bspeed(?:ed)?[-\s]up\b|\bfast[-\s]?forward(?:ed)?\b", "fast_motion"),
    (r"\btime[-\s]?lapse\b|\bhyper[-\s]?lapse\b", "timelapse"),
    (r"\b(?:seamless(?:ly)?\s+|perfect\s+|infinite\s+)?loop(?:s|ed|ing|able)?\b", "loop"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}(?:pan|move|slide|glide|track|truck)(?:s|ing|ning|ned|d)?\s+"
     rf"{_EN_MANNER_WORD}from\s+(?:the\s+)?(?:left|right)\s+to\s+(?:the\s+)?(left|right)\b", "pan"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}pan(?:s|ning|ned)?\s+{_EN_MANNER_WORD}"
     r"(?:to\s+(?:the\s+)?|towards?\s+(?:the\s+)?)?(left|right)(?:wards?)?\b", "pan"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}(?:tilt|pan)(?:s|ing|ed|ning|ned)?\s+{_EN_MANNER_WORD}"
     r"(up|down)(?:wards?)?\b", "tilt"),
    (r"\b(left|right)(?:ward)?\s+pan\b|\btruck(?:s|ing)?\s+(?:to\s+the\s+)?(left|right)\b", "pan"),
    (r"\bcamera\s+(?:moves|moving|slides|sliding|glides|gliding|tracks|tracking)\s+(?:slowly\s+)?"
     r"(?:to\s+(?:the\s+)?)?(left|right)(?:wards?)?\b", "pan"),
    (r"\bcamera\s+pan(?:s|ning)\b|\bpanning(?:\s+shot)?\b", "pan"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}zoom(?:s|ing|ed)?[-\s]+(in|into|out)\b", "zoom"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}zoom(?:s|ing|ed)?\b", "zoom"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}dolly(?:ing)?[-\s]+(in|forward|out|back|backward)\b", "dolly"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}push(?:es|ing)?[-\s]+(in)\b", "dolly"),
    (r"\bcamera\s+(?:moves|moving|pushes|pushing|glides|gliding|creeps|creeping)\s+(?:slowly\s+)?(closer|forward|in)\b",
     "dolly"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}pull(?:s|ing)?[-\s]+(back|out|away)\b", "dolly"),
    (r"\bcamera\s+(?:moves|moving|backs|backing)\s+(?:slowly\s+)?(back|away|backward)\b", "dolly"),
    (r"\b(counter-?clockwise|anti-?clockwise|clockwise)\s+orbit\b", "orbit"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}orbit(?:s|ing|ed)?(?:\s+(?:to\s+the\s+)?"
     r"(left|right|counter-?clockwise|anti-?clockwise|clockwise))?\b", "orbit"),
    (r"\barc(?:ing)?\s+shot\b|\b360(?:°|\s*degrees?|-degree)?\s+(?:orbit|rotation|shot|spin)\b", "orbit"),
    (r"\bcamera\s+(?:circles|circling|rotates|rotating|revolves|revolving)\b", "orbit"),
]
_EN_CAMERA = [(re.compile(p, re.IGNORECASE), kind) for p, kind in _EN_CAMERA_RULES]
#: What may sit around camera words in a clause that is only about the camera ("a slow zoom in").
EN_CAMERA_FILLER = frozenset({
    "camera", "the", "a", "an", "shot", "shots", "with", "and", "then", "slowly", "slow", "gently", "gentle",
    "smooth", "smoothly", "quick", "quickly", "steady", "steadily", "very", "in", "of", "style", "effect", "footage",
    "video", "movement", "move", "moves", "please", "to", "view", "cam", "is",
})

_EN_DIRECTION_TAGS = {
    ("pan", "left"): "pan_left", ("pan", "right"): "pan_right", ("tilt", "up"): "tilt_up", ("tilt", "down"): "tilt_down",
    ("zoom", "in"): "zoom_in", ("zoom", "into"): "zoom_in", ("zoom", "out"): "zoom_out", ("zoom", ""): "zoom_in",
    ("dolly", "in"): "dolly_in", ("dolly", "forward"): "dolly_in", ("dolly", "closer"): "dolly_in",
    ("dolly", "out"): "dolly_out", ("dolly", "back"): "dolly_out", ("dolly", "backward"): "dolly_out",
    ("dolly", "away"): "dolly_out", ("orbit", "left"): "orbit_left", ("orbit", "counterclockwise"): "orbit_left",
    ("orbit", "counter-clockwise"): "orbit_left", ("orbit", "anticlockwise"): "orbit_left",
    ("orbit", "anti-clockwise"): "orbit_left",
}


#: The camera moving toward a direction character (镜头向左, 镜头缓缓向上摇, 镜头向前推).
_DIRECTION_TAGS = {"左": "pan_left", "右": "pan_right", "上": "tilt_up", "下": "tilt_down",
                   "前": "dolly_in", "后": "dolly_out"}


def _cn_camera_tag(kind: str, text: str) -> tuple[str | None, str, str]:
    """(tag, phrase, note) for one Chinese camera match."""
    if kind.startswith("text:"):
        return None, kind[5:], ""
    if kind == "orbit":
        tag = "orbit_left" if ("左" in text or "逆" in text) else "orbit_right"
        given = "左" in text or "右" in text or "时针" in text
        return tag, CAMERA_PHRASES[tag], "" if given else "orbit direction not given: assumed right"
    if kind in ("direction", "pan"):
        direction = next((c for c in reversed(text) if c in _DIRECTION_TAGS), "")
        tag = _DIRECTION_TAGS.get(direction)
        if tag is None:
            return None, "camera panning", "pan direction not given: no pan tag set"
        return tag, CAMERA_PHRASES[tag], ""
    return kind, CAMERA_PHRASES[kind], ""


def _en_camera_tag(kind: str, match: re.Match[str]) -> tuple[str | None, str, str]:
    """(tag, phrase, note) for one English camera match."""
    if kind in CAMERA_PHRASES:
        return kind, CAMERA_PHRASES[kind], ""
    groups = [g.lower() for g in match.groups() if g]
    direction = groups[-1] if groups else ""
    if kind == "orbit":
        tag = _EN_DIRECTION_TAGS.get((kind, direction), "orbit_right")
        return tag, CAMERA_PHRASES[tag], "" if direction else "orbit direction not given: assumed right"
    tag = _EN_DIRECTION_TAGS.get((kind, direction))
    if tag is None:
        return None, "camera panning", "pan direction not given: no pan tag set"
    return tag, CAMERA_PHRASES[tag], ""


def manner_of(text: str) -> str:
    """The manner adverb inside a camera phrase ("缓缓向左平移" -> "slowly")."""
    low = text.lower()
    for words, adverb in (
        (("慢", "缓", "徐", "slow"), "slowly"), (("轻", "微", "gentl"), "gently"),
        (("平稳", "匀速", "smooth", "stead"), "smoothly"), (("快", "迅", "急", "quick"), "quickly"),
        (("逐渐", "渐渐"), "gradually"),
    ):
        if any(w in low for w in words):
            return adverb
    return ""


def with_manner(tag: str | None, phrase: str, manner: str) -> str:
    if manner and tag in MOVING_TAGS and phrase.startswith("camera "):
        return f"camera {manner} {phrase[7:]}"
    return phrase


def _cut(text: str, start: int, end: int) -> str:
    """Blank out a span, keeping offsets, so later rules and the clause reader cannot see it."""
    return text[:start] + " " * (end - start) + text[end:]


def find_cn_camera(clause: str) -> tuple[list[CameraHit], str]:
    """Camera hits in a clause with Chinese, and the clause with them blanked out."""
    hits: list[CameraHit] = []
    has_context = bool(CN_CAMERA_CONTEXT.search(clause))
    for pattern, kind, needs_context in _CN_CAMERA:
        for match in list(pattern.finditer(clause)):
            if not match.group(0).strip():
                continue
            if needs_context and not has_context and CJK_RE.search(_cut(clause, match.start(), match.end())):
                continue
            tag, phrase, note = _cn_camera_tag(kind, match.group(0))
            hits.append(CameraHit(tag, with_manner(tag, phrase, manner_of(match.group(0))), match.start(), note))
            clause = _cut(clause, match.start(), match.end())
    return hits, clause


def find_en_camera(clause: str) -> tuple[list[CameraHit], str]:
    """Camera hits in English text, and the text with them blanked out."""
    hits: list[CameraHit] = []
    for pattern, kind in _EN_CAMERA:
        for match in list(pattern.finditer(clause)):
            if not match.group(0).strip():
                continue
            tag, phrase, note = _en_camera_tag(kind, match)
            hits.append(CameraHit(tag, phrase, match.start(), note))
            clause = _cut(clause, match.start(), match.end())
    return hits, clause


def camera_moves(text: str) -> list[CameraHit]:
    """The camera instructions `text` gives, in Chinese or English, as the refiner reads them (tempo words such as
    慢动作 are not camera moves and are left out), so other parts of i2v need no camera vocabulary of their own."""
    chinese, rest = find_cn_camera(text)
    english, _ = find_en_camera(rest)
    return [hit for hit in chinese + english if hit.tag is None or hit.tag in CAMERA_TAGS]
