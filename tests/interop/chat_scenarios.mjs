// The chat scenarios, the same for both SDK generations (ts_chat.mjs: spacetimedb 2.x, ts_chat_v1.mjs: 1.x).
// Each takes `{out, step, newClient, opts}` (chat_harness.mjs runScenario) and drives clients made by
// `newClient(name)` (ChatClientBase subclasses), putting what they saw into `out`:
//
//   chat                two clients subscribe, set names, send messages, see each other's rows and updates,
//                       get the reducers' errors, and see each other go offline; where the SDK fires reducer
//                       callbacks for other clients' calls (1.x), B's callbacks see A's calls
//   reconnect           a client reconnects with its saved token (withToken) and gets its identity back
//   oneoff-unsubscribe  one-off queries through the SDK's connection, then unsubscribe() / unsubscribeThen()

import { withTimeout } from './steps.mjs';

const BOTH_TABLES = ['SELECT * FROM user', 'SELECT * FROM message'];

const isUser =
  (identity, pred = () => true) =>
  e =>
    e.table === 'user' && (e.row?.identity === identity || e.new?.identity === identity) && pred(e);

const isMessage = pred => e => e.table === 'message' && e.op === 'insert' && pred(e.row);

/** A reducer callback for `reducer` called by `identity`. */
const isCall = (reducer, identity, pred = () => true) => e =>
  e.reducer === reducer && e.caller === identity && pred(e);

function connectStep(step, client, options, how = '') {
  return step(`${client.name} connects${how}`, () =>
    withTimeout(client.connect(options), client.opts.stepTimeout, `${client.name}: onConnect`)
  );
}

async function chat({ out, step, newClient }) {
  const a = newClient('A');
  const b = newClient('B');
  const calls = (out.calls = {});
  const seen = (out.seen = {});

  await connectStep(step, a);
  await step('A subscribes', () => a.subscribe(BOTH_TABLES));
  out.a_cache_after_subscribe = a.cache('user');
  await connectStep(step, b);
  seen.a_sees_b_insert = await step('A sees B come online', () =>
    a.waitEvent(isUser(b.identity, e => e.op === 'insert'), "B's user row inserted")
  );
  await step('B subscribes', () => b.subscribe(BOTH_TABLES));
  out.b_cache_after_subscribe = b.cache('user');

  let mark = b.events.length;
  let callMark = b.reducerEvents.length;
  calls.a_set_name = await step('A sets its name', () => a.call('setName', { name: 'alice' }));
  seen.a_own_name = await step('A sees its own rename', () =>
    a.waitEvent(isUser(a.identity, e => e.op === 'update' && e.new.name === 'alice'), 'own rename to alice')
  );
  seen.b_sees_a_name = await step('B sees A renamed', () =>
    b.waitEvent(isUser(a.identity, e => e.op === 'update'), "A's user row updated", mark)
  );
  if (b.seesOthersCalls) {
    seen.b_sees_a_set_name_call = await step("B's onSetName sees A's call", () =>
      b.waitReducerEvent(isCall('set_name', a.identity), "A's set_name", callMark)
    );
  }

  mark = a.events.length;
  calls.b_set_name = await step('B sets its name', () => b.call('setName', { name: 'bob' }));
  seen.a_sees_b_name = await step('A sees B renamed', () =>
    a.waitEvent(isUser(b.identity, e => e.op === 'update'), "B's user row updated", mark)
  );

  calls.a_empty_name = await step('A sets an empty name', () => a.call('setName', { name: '' }));
  calls.b_empty_message = await step('B sends an empty message', () => b.call('sendMessage', { text: '' }));

  mark = b.events.length;
  callMark = b.reducerEvents.length;
  calls.a_message = await step('A sends a message', () => a.call('sendMessage', { text: 'hello from alice' }));
  seen.a_own_message = await step('A sees its own message', () =>
    a.waitEvent(isMessage(row => row.text === 'hello from alice'), 'own message')
  );
  seen.b_sees_a_message = await step("B sees A's message", () =>
    b.waitEvent(isMessage(row => row.sender === a.identity), "A's message", mark)
  );
  if (b.seesOthersCalls) {
    seen.b_sees_a_call = await step("B's onSendMessage sees A's call", () =>
      b.waitReducerEvent(isCall('send_message', a.identity), "A's send_message", callMark)
    );
  }

  mark = a.events.length;
  const long = 'bob says: ' + 'lorem ipsum dolor sit amet '.repeat(150); // > 1 KiB: compressed by the server
  out.long_text_length = long.length;
  calls.b_message = await step('B sends a message', () => b.call('sendMessage', { text: 'hi from bob' }));
  calls.b_long_message = await step('B sends a long message', () => b.call('sendMessage', { text: long }));
  seen.a_sees_b_message = await step("A sees B's message", () =>
    a.waitEvent(isMessage(row => row.text === 'hi from bob'), "B's message", mark)
  );
  seen.a_sees_b_long_message = await step("A sees B's long message", () =>
    a.waitEvent(isMessage(row => row.text.length > 1000), "B's long message", mark)
  );
  out.a_got_long_message_intact = seen.a_sees_b_long_message.row.text === long;

  out.a_messages = a.cache('message');
  out.b_messages = b.cache('message');
  out.a_users = a.cache('user');
  out.b_users = b.cache('user');

  mark = a.events.length;
  out.b_disconnect = await step('B disconnects', () => b.disconnect());
  seen.a_sees_b_offline = await step('A sees B go offline', () =>
    a.waitEvent(isUser(b.identity, e => e.op === 'update' && e.new.online === false), 'B offline', mark)
  );
  out.a_users_after_b_left = a.cache('user');
  out.a_disconnect = await step('A disconnects', () => a.disconnect());
}

async function reconnect({ out, step, newClient }) {
  const observer = newClient('O');
  const first = newClient('A1');
  const again = newClient('A2');
  const other = newClient('C');
  const bad = newClient('X');
  const seen = (out.seen = {});

  await connectStep(step, observer);
  await step('O subscribes', () => observer.subscribe(['SELECT * FROM user']));

  const creds = await connectStep(step, first, {}, ' without a token');
  out.saved_token_length = creds.token.length;
  await step('A1 subscribes', () => first.subscribe(['SELECT * FROM user']));
  out.a1_set_name = await step('A1 sets its name', () => first.call('setName', { name: 'carol' }));
  seen.o_sees_a1_name = await step('O sees A1 renamed', () =>
    observer.waitEvent(isUser(first.identity, e => e.op === 'update' && e.new.name === 'carol'), 'A1 renamed')
  );

  let mark = observer.events.length;
  await step('A1 disconnects', () => first.disconnect());
  seen.o_sees_a1_offline = await step('O sees A1 go offline', () =>
    observer.waitEvent(isUser(first.identity, e => e.op === 'update' && e.new.online === false), 'A1 offline', mark)
  );

  mark = observer.events.length;
  const back = await connectStep(step, again, { token: creds.token }, ' with the saved token');
  out.a2_token_is_saved_token = back.token === creds.token;
  out.same_identity = back.identity === creds.identity;
  out.ws_token_differs_from_saved =
    again.wsUrl !== null && new URL(again.wsUrl).searchParams.get('token') !== creds.token;
  seen.o_sees_a2_online = await step('O sees A come back online', () =>
    observer.waitEvent(isUser(creds.identity, e => e.op === 'update' && e.new.online === true), 'A back online', mark)
  );
  await step('A2 subscribes', () => again.subscribe(['SELECT * FROM user']));
  out.a2_own_row = again.cache('user').find(u => u.identity === creds.identity) ?? null;
  out.a2_set_name = await step('A2 sets its name', () => again.call('setName', { name: 'carol2' }));
  seen.o_sees_a2_name = await step('O sees A2 renamed', () =>
    observer.waitEvent(isUser(creds.identity, e => e.op === 'update' && e.new.name === 'carol2'), 'A2 renamed')
  );

  const anon = await connectStep(step, other, {}, ' without a token');
  out.anonymous_identity_differs = anon.identity !== creds.identity;
  await step('C disconnects', () => other.disconnect());

  out.bad_token = await step('X connects with a bad token', async () => {
    try {
      await withTimeout(bad.connect({ token: 'not-a-token' }), bad.opts.stepTimeout, 'X: onConnect or onConnectError');
      return { connected: true };
    } catch (e) {
      if (/^timed out/.test(e.message)) throw e;
      return { connected: false, error: e.message };
    }
  });

  mark = observer.events.length;
  await step('A2 disconnects', () => again.disconnect());
  seen.o_sees_a2_offline = await step('O sees A2 go offline', () =>
    observer.waitEvent(isUser(creds.identity, e => e.op === 'update' && e.new.online === false), 'A2 offline', mark)
  );
  await step('O disconnects', () => observer.disconnect());
}

async function oneoffUnsubscribe({ out, step, newClient, opts }) {
  const a = newClient('A');
  const b = newClient('B');
  const seen = (out.seen = {});
  const oneOff = (out.one_off = {});

  await connectStep(step, a);
  const messages = await step('A subscribes to messages', () => a.subscribe(['SELECT * FROM message']));
  const users = await step('A subscribes to users', () => a.subscribe(['SELECT * FROM user']));
  await connectStep(step, b);
  await step('A sees B', () => a.waitEvent(isUser(b.identity, e => e.op === 'insert'), "B's user row"));

  await step('A sends a message', () => a.call('sendMessage', { text: 'first' }));
  await step('B sends a message', () => b.call('sendMessage', { text: 'second' }));
  await step("A sees B's message", () => a.waitEvent(isMessage(row => row.text === 'second'), "B's message"));

  oneOff.messages = await step('one-off: messages', () => a.oneOff('SELECT * FROM message'));
  oneOff.users = await step('one-off: users', () => a.oneOff('SELECT * FROM user'));
  oneOff.filtered = await step('one-off: filtered', () => a.oneOff(`SELECT * FROM message WHERE text = 'second'`));
  oneOff.quoted = await step('one-off: quoted table name', () => a.oneOff('SELECT * FROM "user" WHERE online = true'));
  oneOff.bad = await step('one-off: bad query', () => a.oneOff('SELECT * FROM no_such_table'));

  // unsubscribeThen(): the end callback fires, the dropped rows leave the cache (onDelete)
  let mark = a.events.length;
  const serverMark = a.serverMessages.length;
  out.messages_active_before = messages.isActive();
  const ended = new Promise(resolve => messages.unsubscribeThen(() => resolve(true)));
  out.messages_unsubscribe_then_called = await step('A unsubscribes from messages', () =>
    withTimeout(ended, opts.stepTimeout, 'A: unsubscribeThen callback')
  );
  out.messages_ended = messages.isEnded();
  out.messages_active_after = messages.isActive();
  out.messages_deleted_on_unsubscribe = a.events.slice(mark).filter(e => e.table === 'message' && e.op === 'delete');
  out.message_cache_after_unsubscribe = a.cache('message');

  mark = a.events.length;
  out.after_unsubscribe_calls = [
    await step('A sends a message after unsubscribing', () => a.call('sendMessage', { text: 'third' })),
    await step('B sends a message after A unsubscribed', () => b.call('sendMessage', { text: 'fourth' })),
    await step('B renames', () => b.call('setName', { name: 'dave' })),
  ];
  // B's rename reaches A (still subscribed to users) after B's message would have: nothing more can come
  seen.a_sees_b_rename = await step("A sees B's rename", () =>
    a.waitEvent(isUser(b.identity, e => e.op === 'update' && e.new.name === 'dave'), "B's rename", mark)
  );
  out.message_events_after_unsubscribe = a.events.slice(mark).filter(e => e.table === 'message');
  out.message_cache_later = a.cache('message');
  out.server_messages_after_unsubscribe = a.serverMessages.slice(serverMark);

  // unsubscribe(): no callback; the handle ends once the server confirmed it
  mark = a.events.length;
  await step('A unsubscribes from users', async () => {
    users.unsubscribe();
    const t = Date.now();
    while (!users.isEnded()) {
      if (Date.now() - t > opts.stepTimeout) throw new Error('timed out waiting for the user subscription to end');
      await new Promise(resolve => setTimeout(resolve, 10));
    }
  });
  out.users_active_after = users.isActive();
  out.users_deleted_on_unsubscribe = a.events.slice(mark).filter(e => e.table === 'user' && e.op === 'delete');
  out.user_cache_after_unsubscribe = a.cache('user');

  mark = a.events.length;
  await step('B renames again', () => b.call('setName', { name: 'dave2' }));
  // a one-off from A is answered after any update the rename could have caused for A
  oneOff.users_later = await step('one-off: users later', () => a.oneOff('SELECT * FROM user'));
  out.events_after_all_unsubscribed = a.events.slice(mark);
  out.one_off_still_works_with_no_subscription = oneOff.users_later.ok;

  await step('B disconnects', () => b.disconnect());
  await step('A disconnects', () => a.disconnect());
}

export const SCENARIOS = { chat, reconnect, 'oneoff-unsubscribe': oneoffUnsubscribe };
