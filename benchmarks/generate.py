"""Write a deterministic, seed-shaped vault of N Cornell notes for benchmarks.

    python benchmarks/generate.py OUT_DIR --notes 10000 [--seed 1]

Every note has the real shapes note2anki meets: a long emoji-keyed frontmatter, a line of tag links, a cue
section whose answers are numbered lists, paragraphs, bold text, code, tables, images, callouts and math, a
large main-notes section (about 10 KB, which no card needs), a summary (some terms in bold, so cloze cards
too) and a review reminder. The same N and seed always give the same bytes.
"""

from __future__ import annotations

import argparse
import random
import struct
import zlib
from pathlib import Path

SUBJECTS = {
    "AWS": ["클라우드 입문 노트", "Practical Cloud Operations"],
    "Networking": ["Computer Networks Field Guide", "네트워크 기초 다지기"],
    "Algorithms": ["코딩 테스트 필수 알고리즘", "Algorithms in Small Steps"],
    "Databases": ["SQL by Example", "데이터베이스 설계 노트"],
    "Operating Systems": ["OS 핵심 정리", "Processes and Memory"],
}
KO = [
    "요청",
    "응답",
    "서버",
    "함수",
    "컨테이너",
    "캐시",
    "인덱스",
    "트랜잭션",
    "스레드",
    "프로세스",
    "메모리",
    "디스크",
    "네트워크",
    "패킷",
    "라우터",
    "스위치",
    "큐",
    "스택",
    "해시",
    "트리",
    "그래프",
    "정렬",
    "탐색",
    "복잡도",
    "배포",
    "설정",
    "권한",
    "정책",
    "로그",
    "지표",
    "경보",
    "백업",
    "복구",
    "복제",
    "분산",
    "일관성",
    "가용성",
    "지연",
    "처리량",
    "확장",
    "부하",
    "균형",
    "장애",
    "재시도",
    "시간",
    "제한",
    "동시성",
    "잠금",
    "교착",
    "상태",
    "스케줄러",
    "페이지",
    "가상",
    "주소",
]
EN = [
    "request",
    "response",
    "server",
    "function",
    "container",
    "cache",
    "index",
    "transaction",
    "thread",
    "process",
    "memory",
    "disk",
    "network",
    "packet",
    "router",
    "switch",
    "queue",
    "stack",
    "hash",
    "tree",
    "graph",
    "sort",
    "search",
    "latency",
    "throughput",
    "replica",
    "shard",
    "lock",
    "deadlock",
    "scheduler",
    "page",
    "virtual",
    "address",
    "backup",
    "restore",
    "policy",
    "metric",
    "alarm",
    "retry",
    "timeout",
]
ENDINGS = [
    "이다.",
    "한다.",
    "된다.",
    "할 수 있다.",
    "을 줄인다.",
    "를 늘린다.",
    "에 영향을 준다.",
    "가 중요하다.",
]
ATTACHMENTS = 24


def sentence(rng: random.Random, words: int = 9) -> str:
    parts = []
    for _ in range(words):
        parts.append(rng.choice(KO) if rng.random() < 0.7 else rng.choice(EN))
    return " ".join(parts) + " " + rng.choice(ENDINGS)


def question(rng: random.Random, i: int) -> str:
    a, b = rng.choice(EN).capitalize(), rng.choice(KO)
    forms = [f"{a} vs {b}", f"{b}{i}란?", f"{a}의 {b}을 줄이는 방법은?", f"What limits {a.lower()} {i}?"]
    return forms[i % len(forms)]


def answer(rng: random.Random, kind: int) -> list[str]:
    """Answer lines, indented under the question bullet: one shape per kind."""
    s = lambda: sentence(rng)  # noqa: E731
    if kind == 0:
        return [f"    {n}. {s()}" for n in range(1, rng.randint(2, 4) + 1)]
    if kind == 1:
        return ["    ", f"    {s()} {s()}", "    "]
    if kind == 2:
        return [
            "    ",
            f"    **{rng.choice(EN)}**는 {s()}",
            "    ",
            f"    **{rng.choice(KO)}**를 {s()}",
            "    ",
        ]
    if kind == 3:
        return [
            "    ```python",
            f"    def {rng.choice(EN)}_{kind}(items):",
            f"        return [x for x in items if x > {rng.randint(1, 99)}]  # {rng.choice(KO)}",
            "    ```",
        ]
    if kind == 4:
        rows = [f"    | {rng.choice(KO)} | {rng.choice(EN)} |" for _ in range(3)]
        return ["    | 항목 | 설명 |", "    | --- | --- |", *rows]
    if kind == 5:
        return ["    ", f"    ![[bench {rng.randrange(ATTACHMENTS):02d}.png]]", f"    {s()}", "    "]
    if kind == 6:
        return ["    ", "    > [!important] 핵심", f"    > {s()}", "    "]
    if kind == 7:
        return [
            "    ",
            f"    $O(n \\log n)$ 이고 {s()}",
            "    ",
            "    $$",
            "    T(n) = 2T(n/2) + O(n)",
            "    $$",
        ]
    return [f"    - {s()}", f"        - {s()}", f"    - {s()}"]


def main_notes(rng: random.Random, target: int) -> list[str]:
    """The big main-notes section (toggles, nested bullets, code, images), about `target` bytes."""
    lines = ["- 전체 내용 접기"]
    size = 0
    n = 0
    while size < target:
        n += 1
        chunk = [
            f"    - {sentence(rng, 12)}",
            f"        - {sentence(rng, 10)}",
            f"        - {sentence(rng, 8)}",
        ]
        if n % 7 == 0:
            chunk += [
                "        ```bash",
                f"        aws {rng.choice(EN)} describe --{rng.choice(EN)} {n}",
                "        ```",
            ]
        if n % 11 == 0:
            chunk += [f"        ![[bench {rng.randrange(ATTACHMENTS):02d}.png]]"]
        lines += chunk
        size += sum(len(c.encode()) + 1 for c in chunk)
    return lines


def note(rng: random.Random, index: int, main_bytes: int) -> tuple[str, str]:
    subject = rng.choice(sorted(SUBJECTS))
    textbook = rng.choice(SUBJECTS[subject])
    day = 1 + index % 28
    front = [
        "---",
        f"⭕첫 학습날: 2025-03-{day:02d}",
        f"⭕과목: {subject}",
        f"⭕교재: {textbook}",
        "⭕학습정도: 🤔중",
        *(
            f"{e}{d}일복습여부: {str(rng.random() < 0.5).lower()}"
            for e, d in (("❤", 1), ("🧡", 4), ("💛", 7))
        ),
        "🧠장기기억: false",
        "복습: 추가 복습",
        f'🛑첫날: "✏첫날 : 2025/03/{day:02d}"',
        f'학습률: "{rng.randint(1, 9) / 10}"',
        "진행바: 🟩🟩🟩🟩🟩🟩⬜⬜⬜⬜ 60%",
        "---",
    ]
    title = f"{rng.choice(EN).capitalize()} {rng.choice(KO)} {index:05d}"
    body = [f"[[{subject}]] [[{textbook}]] [[{title}]]", "", "### 단서 질문", ""]
    for i in range(rng.randint(7, 11)):
        body.append(f"- {question(rng, i)}")
        body += answer(rng, (i + index) % 9)
    body += [
        "",
        "### 핵심 필기",
        "",
        *main_notes(rng, main_bytes),
        "",
        "### 핵심 요약",
        "",
        "- 핵심 요약 접기",
    ]
    for i in range(5):
        text = sentence(rng, 8)
        if i % 2 == 0:
            word = rng.choice(KO)
            text = f"**{word}** {text}"
        body.append(f"    - {text}")
    body += ["", "### 복습알림", "", "- ", "> [!important]  ", "> "]
    folder = subject.replace(" ", "_")
    return f"{folder}/{title}.md", "\n".join(front + body) + "\n"


def png(rng: random.Random) -> bytes:
    """A small valid PNG (8x8, random grey levels): real media files for the deck."""
    raw = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(8)) for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def generate(out: Path, notes: int, seed: int = 1, main_bytes: int = 9000) -> int:
    """Write the vault; returns the number of bytes of Markdown written."""
    rng = random.Random(seed)
    total = 0
    (out / "attachments").mkdir(parents=True, exist_ok=True)
    for i in range(ATTACHMENTS):
        (out / "attachments" / f"bench {i:02d}.png").write_bytes(png(rng))
    for i in range(notes):
        rel, text = note(rng, i, main_bytes)
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(data)
        total += len(data)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    size = generate(args.out, args.notes, args.seed)
    print(f"{args.out}: {args.notes} notes, {size / 1e6:.1f} MB of Markdown")


if __name__ == "__main__":
    main()
