"""Pictures of what the assistant knows: matplotlib figures written as PNG files.

Contract: each function takes the people service (``assistant.people.service.People``) and the people to draw, and writes one PNG
to ``out`` and returns its path, or returns None when there is nothing to draw yet (the caller
says so in words). Nobody outside ``people`` is drawn, so a login only ever sees its own.
- ``people_map``: every exchange's questioner embedding projected to 2-D by PCA, a dot coloured
  by person, each prototype a labelled star; the title says how often the nearest prototype is
  the right person (how well people are told apart).
- ``topics``: a person's query clusters by size, each labelled with an example question.
- ``activity``: a person's exchanges per day (per week over long spans).
- ``cloud_share``: the share of answered turns that went to the cloud, per week, per person.
Names and questions are drawn as typed (``_plain``): matplotlib would read ``$…$`` in them as math.
"""

from __future__ import annotations

import textwrap
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures only ever become files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.dates import AutoDateLocator, DateFormatter  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from assistant.people.service import People  # noqa: E402

MAP_POINTS = 4000  # a sample keeps the map fast and readable on big memories
COLOURS = plt.get_cmap("tab10")


def people_map(household: People, people: list[int], out: Path) -> Path | None:
    loaded = household.vectors.load()
    keep = np.isin(loaded.profile_ids, people)
    vectors = loaded.dialogue if loaded.dialogue is not None else loaded.query
    if vectors.size == 0 or keep.sum() < 2:
        return None
    vectors, owners = vectors[keep], loaded.profile_ids[keep]
    proto_ids, prototypes, _ = household.vectors.prototypes()
    if prototypes.size and prototypes.shape[1] == vectors.shape[1]:  # not from an older encoder
        mine = np.isin(proto_ids, people)
        proto_ids, prototypes = proto_ids[mine], prototypes[mine]
    else:
        proto_ids, prototypes = proto_ids[:0], None
    sample = np.random.default_rng(0).permutation(len(vectors))[:MAP_POINTS]
    vectors, owners = vectors[sample], owners[sample]
    mean, axes = _pca(vectors)
    names = {p.id: p.name for p in household.everyone()}
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for n, person in enumerate(sorted(set(owners.tolist()))):
        points = (vectors[owners == person] - mean) @ axes
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.5, color=COLOURS(n % 10), label=_plain(names.get(person, "?")))
        if prototypes is not None and person in proto_ids:
            star = (prototypes[proto_ids == person] - mean) @ axes
            ax.scatter(star[:, 0], star[:, 1], marker="*", s=320, color=COLOURS(n % 10), edgecolor="black", zorder=3)
    ax.set_title(_separation(vectors, owners, proto_ids, prototypes), fontsize=10)
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    ax.legend(fontsize=8, markerscale=2, loc="best")
    return _save(fig, out)


def _pca(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0).fit(vectors)
    return pca.mean_, pca.components_.T


def _separation(vectors, owners, proto_ids, prototypes) -> str:
    title = "Each dot an exchange, ★ a person's prototype"
    if prototypes is None or len(proto_ids) < 2:
        return title
    nearest = proto_ids[np.argmax(vectors @ prototypes.T, axis=1)]
    return f"{title}\nthe nearest prototype is the right person for {np.mean(nearest == owners):.0%}"


def topics(people: People, profile_id: int, out: Path, top: int = 8) -> Path | None:
    rows = people.topic_sizes(profile_id, top)
    if not rows:
        return None
    labels = [f"#{r['cluster']}: " + _plain(textwrap.shorten(r["example"], 38, placeholder="…")) for r in rows][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.4))
    ax.barh(labels, [r["n"] for r in rows][::-1], color=COLOURS(0))
    ax.set_xlabel("exchanges")
    ax.set_title(f"Topics {_plain(people.profile(profile_id).name)} asks about (query clusters)", fontsize=10)
    return _save(fig, out)


def activity(people: People, profile_id: int, out: Path) -> Path | None:
    days = [_day(stamp) for stamp in people.activity(profile_id)]
    if not days:
        return None
    weekly = (max(days) - min(days)).days > 60
    counts = Counter(_week(d) if weekly else d for d in days)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(list(counts), list(counts.values()), width=6 if weekly else 0.8, color=COLOURS(2))
    ax.set_ylabel("exchanges per " + ("week" if weekly else "day"))
    ax.set_title(f"When {_plain(people.profile(profile_id).name)} talks to the assistant", fontsize=10)
    _date_axis(ax, min(days), max(days))
    return _save(fig, out)


def cloud_share(household: People, people: list[int], out: Path) -> Path | None:
    if not people:
        return None
    rows = household.answered_routes(people)
    if not rows:
        return None
    weeks: dict[int, dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in rows:
        tally = weeks[r["profile_id"]][_week(_day(r["created_at"]))]
        tally[0] += r["route"] == "cloud"
        tally[1] += 1
    names = {p.id: p.name for p in household.everyone()}
    fig, ax = plt.subplots(figsize=(7, 3))
    for n, (person, tallies) in enumerate(sorted(weeks.items())):
        xs = sorted(tallies)
        ax.plot(xs, [tallies[x][0] / tallies[x][1] for x in xs], marker="o", color=COLOURS(n % 10), label=_plain(names.get(person, "?")))
    ax.set_ylim(-0.05, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("in the cloud")
    ax.set_title("Share of turns answered in the cloud, per week", fontsize=10)
    ax.legend(fontsize=8)
    weeks_seen = [w for tallies in weeks.values() for w in tallies]
    _date_axis(ax, min(weeks_seen), max(weeks_seen))
    return _save(fig, out)


def _date_axis(ax, first: date, last: date) -> None:
    """Readable dates, with a few days' margin so a single day is a bar, not the whole width."""
    ax.set_xlim(first - timedelta(days=3), last + timedelta(days=3))
    ax.xaxis.set_major_locator(AutoDateLocator(maxticks=6))
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    ax.figure.autofmt_xdate()


def _plain(text: str) -> str:
    """Text matplotlib draws as written: ``$`` would start mathtext, so it is escaped."""
    return text.replace("$", r"\$")


def _day(stamp: str) -> date:
    return datetime.fromisoformat(stamp).astimezone().date()


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _save(fig, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
