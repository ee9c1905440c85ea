"""`gridline notify`: test a group's robot with a message now; seal secrets for the groups file."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

import typer
from rich.console import Console

from gridline.personal import Sealer
from gridline.settings import Settings
from services.notify.channels.base import Message, Outgoing, PermanentFailure, TransientFailure
from services.notify.groups import GroupsFileError, seal_secret
from services.notify.routing import build_router
from services.notify.templates import render

app = typer.Typer(help="Notify: robots, SMS and the groups file.", no_args_is_help=True)
console = Console()


def _test_message(group_id: str) -> Message:
    return Message(
        notification_id=f"test-{uuid.uuid4().hex}",
        kind="NOTIFICATION_KIND_TEST",
        level=0,
        group_id=group_id,
        group_name=group_id,
        title="机器人配置测试",
        text="这是一条测试消息。",
        link="",
        task_id="",
        report_id="",
        report_accepted_at="",
    )


async def _send_test(settings: Settings, group_id: str, phone: str) -> list[tuple[str, str]]:
    router = build_router(settings)
    try:
        group = router.config.groups.get(group_id)
        if group is None:
            raise typer.BadParameter(
                f"group {group_id!r} is not in the groups file", param_hint="GROUP"
            )
        message = _test_message(group_id)
        rendered = render(message)
        targets = []
        if group.robot is not None:
            targets.append(
                (router.robots[group.robot.kind], Outgoing(message, rendered, robot=group.robot))
            )
        if phone and router.sms is not None:
            targets.append((router.sms, Outgoing(message, rendered, phone=phone)))
        if not targets:
            raise typer.BadParameter(
                f"group {group_id!r} has no robot (and no --phone for SMS)", param_hint="GROUP"
            )
        results = []
        for channel, outgoing in targets:
            try:
                await channel.send(outgoing)
                results.append((channel.name, ""))
            except (PermanentFailure, TransientFailure) as exc:
                results.append((channel.name, str(exc)))
        return results
    finally:
        await router.close()


@app.command("test")
def test_group(
    group: Annotated[str, typer.Argument(help="The group id, as in the groups file.")],
    phone: Annotated[str, typer.Option(help="Also send a test SMS to this mobile.")] = "",
) -> None:
    """Send a test message through GROUP's robot (and SMS) now; exit 1 if the vendor refuses."""
    settings = Settings()
    try:
        results = asyncio.run(_send_test(settings, group, phone))
    except GroupsFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="GRIDLINE_NOTIFY_GROUPS_FILE") from exc
    failed = False
    for channel, error in results:
        if error:
            failed = True
            console.print(f"[red]{channel}: refused[/red] {error}")
        else:
            console.print(f"[green]{channel}: sent[/green]")
    if failed:
        raise typer.Exit(1)


@app.command("seal")
def seal(value: Annotated[str, typer.Argument(help="A key, token or secret.")]) -> None:
    """Print VALUE sealed with the PII key, as the groups file stores secrets."""
    settings = Settings()
    typer.echo(seal_secret(Sealer(settings.pii_key.get_secret_value()), value))
