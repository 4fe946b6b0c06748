// Client bindings for the quickstart chat module (demos/chat/module.py), written by hand in plain JS for the
// official TypeScript SDK (npm `spacetimedb`, pinned in package.json). They have the shape of what
// `spacetime generate --lang typescript` makes for SDK 2.x (one module: row types, table schemas, reducer
// schemas, REMOTE_MODULE, DbConnection / DbConnectionBuilder / SubscriptionBuilder classes), built only from
// the SDK's public exports. Used by ts_chat.mjs (test_ts_server.py).
//
// Wire schema (demos/chat/module.py; tests/data/quickstart_chat.schema.json):
//   table `message` (public, no PK): sender Identity, sent Timestamp, text String
//   table `user`    (public, PK identity): identity Identity, name Option<String>, online Bool
//   reducers: send_message(text: String), set_name(name: String)

import {
  reducerSchema as __reducerSchema,
  reducers as __reducers,
  schema as __schema,
  t as __t,
  table as __table,
} from 'spacetimedb';

import { moduleBindings } from './bindings_common.mjs';

// ---- types (what `types/*.ts` would hold) ----------------------------------------------------------------
/** The `Message` product type (typespace ref 0 on the server). */
export const Message = __t.object('Message', {
  sender: __t.identity(),
  sent: __t.timestamp(),
  text: __t.string(),
});

/** The `User` product type (typespace ref 1 on the server). */
export const User = __t.object('User', {
  identity: __t.identity(),
  name: __t.option(__t.string()),
  online: __t.bool(),
});

// ---- table rows (what `*_table.ts` would hold) ------------------------------------------------------------
const MessageRow = __t.row({
  sender: __t.identity(),
  sent: __t.timestamp(),
  text: __t.string(),
});

const UserRow = __t.row({
  identity: __t.identity().primaryKey(),
  name: __t.option(__t.string()),
  online: __t.bool(),
});

// ---- reducer argument rows (what `*_reducer.ts` would hold) ---------------------------------------------
const SendMessageReducer = { text: __t.string() };
const SetNameReducer = { name: __t.string() };

// ---- the module ------------------------------------------------------------------------------------------
/** The schema of every table, as the module declares it. */
const tablesSchema = __schema({
  message: __table({ name: 'message', indexes: [], constraints: [] }, MessageRow),
  user: __table(
    {
      name: 'user',
      indexes: [
        { accessor: 'identity', name: 'user_identity_idx_btree', algorithm: 'btree', columns: ['identity'] },
      ],
      constraints: [{ name: 'user_identity_key', constraint: 'unique', columns: ['identity'] }],
    },
    UserRow
  ),
});

/** The client-callable reducers (lifecycle reducers are not part of the bindings). */
const reducersSchema = __reducers(
  __reducerSchema('send_message', SendMessageReducer),
  __reducerSchema('set_name', SetNameReducer)
);

// REMOTE_MODULE, the query builder, the reducers by accessor name and the connection classes
export const { tables, reducers, SubscriptionBuilder, DbConnectionBuilder, DbConnection } = moduleBindings(
  tablesSchema,
  reducersSchema
);
