"""The edge verifies at most VERIFY_MEMORY_BUDGET bytes of messages at once: the rest wait
their turn (dkimpy holds several copies of what it verifies)."""

from __future__ import annotations

import asyncio

from edge.smtp.inbound import BytesAtOnce


def test_holders_wait_until_their_size_fits() -> None:
    async def scenario() -> list[tuple[str, int]]:
        budget = BytesAtOnce(10)
        seen: list[tuple[str, int]] = []

        async def hold(name: str, size: int) -> None:
            async with budget.holding(size):
                seen.append((name, budget.held))
                await asyncio.sleep(0.02)

        # 6 + 6 > 10: the second waits; 50 is over the whole budget: it waits to be alone.
        await asyncio.gather(hold("a", 6), hold("b", 6), hold("huge", 50), hold("c", 4))
        assert budget.held == 0
        return seen

    seen = asyncio.run(scenario())
    assert seen[0] == ("a", 6)
    assert ("huge", 10) in seen  # alone, counted as the whole budget
    assert all(held <= 10 for _, held in seen)
    assert {name for name, _ in seen} == {"a", "b", "huge", "c"}
