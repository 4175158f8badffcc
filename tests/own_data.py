"""A synthetic dataset that is not taxi: subscription churn, built from scratch.

Other column names, a two-valued text label (``churned``: yes/no), ``NA`` and
``null`` written for missing values, an ID column, a constant column, and a
few rows whose label is missing. Churn depends on several columns at once, so
a model can beat any single-column rule.

    python -m tests.own_data --out /tmp/churn     # writes /tmp/churn/customers.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

PLANS = ("basic", "pro", "team")
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("web", "app", "referral", "partner")
LABEL = "churned == yes"
ROWS_WITHOUT_LABEL = 12


def write_churn_csv(out_dir: Path, rows: int = 6000, seed: int = 7) -> Path:
    """Write ``out_dir/customers.csv`` and return it."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, rows, p=[0.5, 0.35, 0.15])
    region = rng.choice(REGIONS, rows)
    channel = rng.choice(CHANNELS, rows, p=[0.4, 0.3, 0.2, 0.1])
    tenure = rng.integers(1, 121, rows)
    tickets = rng.poisson(1.5, rows).clip(0, 9)
    spend = np.round(rng.gamma(4.0, 20.0, rows) + 10, 2)
    logit = (
        -1.2
        + 1.8 * (plan == "basic")
        - 0.8 * (plan == "team")
        + 0.55 * tickets
        - 0.035 * tenure
        + 0.6 * (channel == "partner")
        + 0.008 * (spend - 90)
        + 0.4 * (region == "south")
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "customers.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["customer_id", "plan", "region", "signup_channel", "tenure_months", "support_tickets",
             "monthly_spend", "currency", "churned"]
        )
        no_label = set(rng.choice(rows, ROWS_WITHOUT_LABEL, replace=False).tolist())
        for i in range(rows):
            spend_cell = "NA" if rng.random() < 0.03 else f"{spend[i]:.2f}"
            channel_cell = "null" if rng.random() < 0.02 else channel[i]
            label_cell = ("NA" if i % 2 else "") if i in no_label else ("yes" if churned[i] else "no")
            writer.writerow(
                [f"C{i:06d}", plan[i], region[i], channel_cell, tenure[i], tickets[i], spend_cell, "EUR", label_cell]
            )
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Directory to write customers.csv into.")
    parser.add_argument("--rows", type=int, default=6000)
    args = parser.parse_args()
    print(write_churn_csv(args.out, args.rows))
