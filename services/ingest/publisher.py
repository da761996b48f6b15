"""Publishing catalogue writes: persistent messages, answered only once the broker confirmed them."""
import asyncio
import logging

from shared.amqp import ROUTING_KEY, Broker, amqp_message
from shared.errors import Unavailable
from shared.schemas import ProductMessage

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, broker: Broker, timeout_s: float):
        self.broker = broker
        self.timeout_s = timeout_s

    async def problem(self) -> str | None:
        return self.broker.problem

    async def publish(self, messages: list[ProductMessage]) -> None:
        """Publish every message and wait for every confirm; raise Unavailable (503) otherwise."""
        if problem := self.broker.problem:
            raise Unavailable(problem)
        exchange = self.broker.exchange
        publishes = [
            exchange.publish(
                amqp_message(message),
                routing_key=ROUTING_KEY,
                mandatory=True,
                timeout=self.timeout_s,
            )
            for message in messages
        ]
        results = await asyncio.gather(*publishes, return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            log.warning("broker did not confirm %d of %d messages: %r", len(failures), len(messages), failures[0])
            raise Unavailable(f"the broker did not confirm {len(failures)} of {len(messages)} messages; retry")
