"""The 0.x Python quickstart client (docs/sdks/python/quickstart.md, the Async client), line by line.

Only these things differ from the documented file:

- the import prefix: ``spacetime_game.sdk`` instead of ``spacetimedb_sdk``;
- the server address and database come from ``QUICKSTART_HOST`` / ``QUICKSTART_DB`` (the docs had
  ``"localhost:3000"`` and ``"chat"``), and the queries name the tables ``user`` and ``message``, their
  canonical names on a 2.x server (the 0.x server called them ``User`` and ``Message``);
- at the end, a test driver: ``input()`` reads a scripted list (``QUICKSTART_INPUT``, JSON) instead of
  stdin, and ``print`` also remembers what was printed, so that a step can wait for a line.

Run it with ``module_bindings`` (made by ``spacetime-game generate``) on the path and ``--client N`` to
pick the settings file, as in the docs.
"""

# The quickstart's own style is kept: its import order, nested ifs and f-strings.
# ruff: noqa: I001, SIM102, F541

import asyncio
from multiprocessing import Queue
import threading

from spacetime_game.sdk.spacetimedb_async_client import SpacetimeDBAsyncClient
import spacetime_game.sdk.local_config as local_config

import module_bindings
from module_bindings.user import User
from module_bindings.message import Message
import module_bindings.send_message_reducer as send_message_reducer
import module_bindings.set_name_reducer as set_name_reducer

import json
import os
import sys
import time
import builtins

HOST = os.environ.get("QUICKSTART_HOST", "localhost:3000")
DATABASE = os.environ.get("QUICKSTART_DB", "quickstart-chat")

input_queue = Queue()
local_identity = None


def user_name_or_identity(user):
    if user.name:
        return user.name
    else:
        return (str(user.identity))[:8]


def on_user_row_update(row_op, user_old, user, reducer_event):
    if row_op == "insert":
        if user.online:
            print(f"User {user_name_or_identity(user)} connected.")
    elif row_op == "update":
        if user_old.online and not user.online:
            print(f"User {user_name_or_identity(user)} disconnected.")
        elif not user_old.online and user.online:
            print(f"User {user_name_or_identity(user)} connected.")

        if user_old.name != user.name:
            print(f"User {user_name_or_identity(user_old)} renamed to {user_name_or_identity(user)}.")


def on_message_row_update(row_op, message_old, message, reducer_event):
    if reducer_event is not None and row_op == "insert":
        print_message(message)


def print_message(message):
    user = User.filter_by_identity(message.sender)
    user_name = "unknown"
    if user is not None:
        user_name = user_name_or_identity(user)

    print(f"{user_name}: {message.text}")


def on_set_name_reducer(sender_id, sender_address, status, message, name):
    if sender_id == local_identity:
        if status == "failed":
            print(f"Failed to set name: {message}")


def on_send_message_reducer(sender_id, sender_address, status, message, msg):
    if sender_id == local_identity:
        if status == "failed":
            print(f"Failed to send message: {message}")


def print_messages_in_order():
    all_messages = sorted(Message.iter(), key=lambda x: x.sent)
    for entry in all_messages:
        print(f"{user_name_or_identity(User.filter_by_identity(entry.sender))}: {entry.text}")


def on_subscription_applied():
    print(f"\nSYSTEM: Connected.")
    print_messages_in_order()


def check_commands():
    global input_queue

    if not input_queue.empty():
        choice = input_queue.get()
        if choice[0] == "name":
            set_name_reducer.set_name(choice[1])
        else:
            send_message_reducer.send_message(choice[1])

    spacetime_client.schedule_event(0.1, check_commands)


def register_callbacks(spacetime_client):
    spacetime_client.client.register_on_subscription_applied(on_subscription_applied)

    User.register_row_update(on_user_row_update)
    Message.register_row_update(on_message_row_update)

    set_name_reducer.register_on_set_name(on_set_name_reducer)
    send_message_reducer.register_on_send_message(on_send_message_reducer)

    spacetime_client.schedule_event(0.1, check_commands)


def on_connect(auth_token, identity):
    global local_identity
    local_identity = identity

    local_config.set_string("auth_token", auth_token)


def run_client(spacetime_client):
    asyncio.run(
        spacetime_client.run(
            local_config.get_string("auth_token"),
            HOST,
            DATABASE,
            False,
            on_connect,
            ["SELECT * FROM user", "SELECT * FROM message"],
        )
    )


def input_loop():
    global input_queue

    while True:
        user_input = input()
        if len(user_input) == 0:
            return
        elif user_input.startswith("/name "):
            input_queue.put(("name", user_input[6:]))
        else:
            input_queue.put(("message", user_input))


# ---- the test driver (not in the docs) ----------------------------------------------------------------
_script = json.loads(os.environ.get("QUICKSTART_INPUT", "[]"))
_printed = []
_print_lock = threading.Lock()


def print(*args, **kwargs):
    """The builtin print, flushed, remembering each line for ``{"wait": text}`` steps."""
    with _print_lock:
        _printed.extend(" ".join(map(str, args)).splitlines())
        builtins.print(*args, **kwargs, flush=True)


def input(prompt=""):
    """The next scripted line: strings are typed lines; ``{"wait": text}`` waits until a printed line
    contains ``text``; an empty line (or the end of the script) ends the input loop."""
    while _script:
        step = _script.pop(0)
        if isinstance(step, str):
            return step
        deadline = time.monotonic() + float(step.get("timeout", 15))
        while True:
            with _print_lock:
                if any(step["wait"] in line for line in _printed):
                    break
            if time.monotonic() > deadline:
                builtins.print(f"DRIVER: timed out waiting for {step['wait']!r}", flush=True)
                return ""
            time.sleep(0.01)
    return ""


if __name__ == "__main__":
    local_config.init(".spacetimedb-python-quickstart")

    spacetime_client = SpacetimeDBAsyncClient(module_bindings)

    register_callbacks(spacetime_client)

    thread = threading.Thread(target=run_client, args=(spacetime_client,))
    thread.start()

    input_loop()

    spacetime_client.force_close()
    thread.join()
    builtins.print("DRIVER: exited", file=sys.stderr, flush=True)
