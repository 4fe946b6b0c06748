// Client bindings for the quickstart chat module (demos/chat/module.py), written by hand in plain JS for the
// official TypeScript SDK (npm `spacetimedb`, pinned in package.json). They have the shape of what
// `spacetime generate --lang typescript` makes for SDK 2.x (one module: row types, table schemas, reducer
// schemas, REMOTE_MODULE, DbConnection / DbConnectionBuilder / SubscriptionBuilder classes), built only from
// the SDK's public exports; the types themselves are in chat_types.mjs. Used by ts_chat.mjs
// (test_ts_server.py).

import {
  reducerSchema as __reducerSchema,
  reducers as __reducers,
  schema as __schema,
  t as __t,
  table as __table,
} from 'spacetimedb';

import { moduleBindings } from './bindings_common.mjs';
import { USER_IDENTITY_INDEX, USER_IDENTITY_KEY, chatTypes } from './chat_types.mjs';

// ---- types, table rows and reducer arguments (what `types/*.ts`, `*_table.ts`, `*_reducer.ts` hold) -------
const { Message, User, MessageRow, UserRow, reducerParams } = chatTypes(__t);
export { Message, User };

// ---- the module ------------------------------------------------------------------------------------------
/** The schema of every table, as the module declares it (2.x: an object of tables). */
const tablesSchema = __schema({
  message: __table({ name: 'message', indexes: [], constraints: [] }, MessageRow),
  user: __table(
    {
      name: 'user',
      indexes: [{ accessor: 'identity', name: USER_IDENTITY_INDEX, algorithm: 'btree', columns: ['identity'] }],
      constraints: [{ name: USER_IDENTITY_KEY, constraint: 'unique', columns: ['identity'] }],
    },
    UserRow
  ),
});

/** The client-callable reducers (lifecycle reducers are not part of the bindings). */
const reducersSchema = __reducers(
  __reducerSchema('send_message', reducerParams.send_message),
  __reducerSchema('set_name', reducerParams.set_name)
);

// REMOTE_MODULE, the query builder, the reducers by accessor name and the connection classes
export const { tables, reducers, SubscriptionBuilder, DbConnectionBuilder, DbConnection } = moduleBindings(
  tablesSchema,
  reducersSchema
);
