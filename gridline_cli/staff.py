"""`gridline staff`: the people of the local issuer, and tokens for them.

For the embedded run and a county trying Gridline before it plugs its identity provider in
(`GRIDLINE_STAFF_OIDC_ISSUER`, docs/security.md): `add` records a person with their role and
node of the grid, `token` mints them a token the services of the same data directory trust.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gridline.ids import new_id
from gridline.settings import Settings
from gridline.staff.identity import Staff
from gridline.staff.issuer import MAX_TOKEN_MINUTES, LocalIssuer
from gridline.staff.roles import PERMISSIONS, ROLE_LEVEL, ROLE_ZH, Role
from gridline.staff.roster import Roster
from gridline.timestamps import now
from gridline_cli.run_file import DEFAULT_DATA_DIR, DataDir, command_settings

app = typer.Typer(help="Staff of the local issuer: record people, mint their tokens.")
console = Console()
# Tokens go to stdout alone, so that `$(gridline staff token …)` is the token; the rest to stderr.
errors = Console(stderr=True)

_ROLES = ", ".join(f"{r.value} ({ROLE_ZH[r]})" for r in Role)


def _local(settings: Settings) -> None:
    """Exit unless the services trust the local issuer."""
    if settings.staff_oidc_issuer:
        errors.print(
            f"[red]the services trust {settings.staff_oidc_issuer} "
            "(GRIDLINE_STAFF_OIDC_ISSUER), not the local issuer: "
            "people and tokens come from there[/red]"
        )
        raise typer.Exit(1)


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="The person's name as the audit trail shows it.")],
    role: Annotated[Role, typer.Option(help=f"One of: {_ROLES}.")],
    node: Annotated[
        str,
        typer.Option(
            help="The directory node the role works at: the county, a township, a community, "
            "or a grid (liaisons and cadres)."
        ),
    ],
    subject: Annotated[
        str, typer.Option(help="The person's id; empty: a new one.", show_default=False)
    ] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Record a person (again with the same --subject: change them)."""
    settings = command_settings(data_dir)
    _local(settings)
    if not name.strip() or not node.strip() or len(node) > 64:
        errors.print("[red]a name and a node id (at most 64 characters) are needed[/red]")
        raise typer.Exit(1)
    person = Staff(
        subject=subject or f"staff-{new_id()[:12]}",
        name=name.strip(),
        role=role,
        node_id=node.strip(),
    )
    new = Roster(settings.data_dir).put(person)
    console.print(
        f"{'added' if new else 'changed'} {person.subject}: {person.name}, {ROLE_ZH[role]} "
        f"at {ROLE_LEVEL[role].value} {person.node_id}"
    )


@app.command("list")
def list_staff(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Everyone recorded, with what their role may do."""
    settings = command_settings(data_dir)
    table = Table(title="Staff of the local issuer")
    for column in ("subject", "name", "role", "node", "may"):
        table.add_column(column)
    for person in Roster(settings.data_dir).people():
        may = " ".join(sorted(p.value for p in PERMISSIONS[person.role]))
        table.add_row(person.subject, person.name, ROLE_ZH[person.role], person.node_id, may)
    console.print(table)


@app.command()
def token(
    subject: Annotated[str, typer.Argument(help="The person's id (`gridline staff list`).")],
    minutes: Annotated[
        int | None,
        typer.Option(
            help=f"How long it stays valid, at most {MAX_TOKEN_MINUTES}; "
            "default: GRIDLINE_STAFF_TOKEN_MINUTES.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print a token for a recorded person (send it as `Authorization: Bearer …`)."""
    settings = command_settings(data_dir)
    _local(settings)
    person = Roster(settings.data_dir).get(subject)
    if person is None:
        errors.print(f"[red]no staff {subject!r}; record them with `gridline staff add`[/red]")
        raise typer.Exit(1)
    lifetime = minutes or settings.staff_token_minutes
    try:
        minted = LocalIssuer(settings.data_dir).mint(
            person, audience=settings.staff_oidc_audience, minutes=lifetime, now=now()
        )
    except ValueError as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    typer.echo(minted)
    errors.print(f"valid {lifetime} minutes for {person.name} ({ROLE_ZH[person.role]})")
