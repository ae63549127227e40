"""Draw docs/img/session-lifetimes.png: when a session ends, idle against absolute.

    .venv/bin/python docs/figures/session_lifetimes.py     (needs matplotlib: the bench group)

Two users with the default lifetimes (30 minutes idle, 8 hours absolute). `ends` is the
rule the manager applies on every load (a session ends at the earlier of its last request
plus the idle timeout and its start plus the absolute timeout); a test replays `USERS`
against a real `SessionManager` and checks that it ends each session when `ends` says.
"""

from __future__ import annotations

from pathlib import Path


IDLE, ABSOLUTE = 0.5, 8.0  # hours: the defaults
USERS = {  # request times, hours since the session began
    "works all day": [x / 4 for x in range(38)],  # a request every 15 minutes
    "leaves after lunch": [0, 0.3, 0.7, 1.0, 1.2, 1.6, 2.0, 2.1, 3.5, 3.6],
}
OUT = Path(__file__).parent.parent / "img" / "session-lifetimes.png"


def ends(requests: list[float]) -> float:
    """When a session with these request times (hours from its start) ends."""
    deadline = min(IDLE, ABSOLUTE)
    for t in requests[1:]:
        if t >= deadline:  # this request finds the session over
            break
        deadline = min(t + IDLE, ABSOLUTE)
    return deadline


def main() -> None:
    import matplotlib as mpl  # noqa: PLC0415 -- only to draw: the rule above needs none

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    users = USERS
    fig, ax = plt.subplots(figsize=(8, 3.2))
    labelled = set()

    def label(text: str) -> str | None:
        if text in labelled:
            return None
        labelled.add(text)
        return text

    for row, requests in enumerate(users.values()):
        end = ends(requests)
        ax.barh(row, end, height=0.5, color="#9ecae1", label=label("session alive"))
        served = [t for t in requests if t < end]
        refused = [t for t in requests if t >= end]
        ax.plot(
            served,
            [row] * len(served),
            "|",
            color="#08519c",
            markersize=14,
            mew=2,
            label=label("request"),
        )
        ax.plot(
            refused,
            [row] * len(refused),
            "x",
            color="#a50f15",
            markersize=7,
            mew=2,
            label=label("a later request: the session is over, it gets a new one"),
        )
        if end < ABSOLUTE:
            why = f"ends at {end:g} h: 30 minutes after the last request ({max(served):g} h)"
        else:
            why = "ends at 8 h: the absolute limit, however active"
        ax.text(end, row + 0.33, why, fontsize=8, ha="right" if end >= ABSOLUTE else "left")
    ax.axvline(ABSOLUTE, color="#a50f15", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(users)))
    ax.set_yticklabels(list(users))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.5, len(users) - 0.2)
    ax.invert_yaxis()
    ax.set_xlabel("hours since the session began (idle timeout 30 min, absolute 8 h)")
    ax.set_title("When a session ends: at the idle or the absolute limit, whichever comes first")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(OUT, dpi=90)


if __name__ == "__main__":
    main()
