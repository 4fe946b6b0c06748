"""The 0.x Python quickstart client written for the documented Basic client: ``SpacetimeDBClient.init``
and an ``update()`` call per frame instead of the Async client's loop (the docs' "useful in settings like
PyGame"). The callbacks are those of docs/sdks/python/quickstart.md, line by line; the Basic client's
``on_identity(token, identity, address)`` saves the token.

Only the import prefix (``spacetime_game.sdk`` instead of ``spacetimedb_sdk``), the server address and
the table names (``user`` and ``message`` on a 2.x server) differ from what a 0.x program would say. At the
end, a test driver: ``input()`` reads a scripted list (``QUICKSTART_INPUT``, JSON) instead of stdin.
"""

# The quickstart's own style is kept: its import order, nested ifs and f-strings.
# ruff: noqa: I001, SIM102, F541

from queue import Queue
import threading
import time

from spacetime_game.sdk.spacetimedb_client import SpacetimeDBClient
import spacetime_game.sdk.local_config as local_config

import module_bindings
from module_bindings.user import User
from module_bindings.message import Message
import module_bindings.send_message_reducer as send_message_reducer
import module_bindings.set_name_reducer as set_name_reducer

import json
import os
import sys
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


def register_callbacks():
    SpacetimeDBClient.instance.register_on_subscription_applied(on_subscription_applied)

    User.register_row_update(on_user_row_update)
    Message.register_row_update(on_message_row_update)

    set_name_reducer.register_on_set_name(on_set_name_reducer)
    send_message_reducer.register_on_send_message(on_send_message_reducer)


def on_identity(auth_token, identity, address):
    global local_identity
    local_identity = identity

    local_config.set_string("auth_token", auth_token)


def on_disconnect(close_msg):
    print(f"SYSTEM: Disconnected ({close_msg}).")


def on_error(error):
    print(f"SYSTEM: Error: {error}")


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

    SpacetimeDBClient.init(
        local_config.get_string("auth_token"),
        HOST,
        DATABASE,
        False,
        module_bindings,
        on_identity=on_identity,
        on_disconnect=on_disconnect,
        on_error=on_error,
    )

    register_callbacks()

    SpacetimeDBClient.instance.subscribe(["SELECT * FROM user", "SELECT * FROM message"])

    thread = threading.Thread(target=input_loop, daemon=True)
    thread.start()

    # the game loop: one update() per frame; every callback runs here, on this thread
    while thread.is_alive() or not input_queue.empty():
        check_commands()
        SpacetimeDBClient.instance.update()
        time.sleep(1 / 60)
    for _ in range(10):  # let the last results arrive
        SpacetimeDBClient.instance.update()
        time.sleep(1 / 60)

    SpacetimeDBClient.instance.close()
    builtins.print("DRIVER: exited", file=sys.stderr, flush=True)
