// The quickstart chat module's types (demos/chat/module.py; tests/data/quickstart_chat.schema.json), made
// with the `t` type builders of whichever SDK generation is given: chat_bindings.mjs (spacetimedb 2.x) and
// chat_bindings_v1.mjs (1.x) wrap them in that generation's table, schema and reducer declarations.
//
//   table `message` (public, no PK): sender Identity, sent Timestamp, text String
//   table `user`    (public, PK identity): identity Identity, name Option<String>, online Bool
//   reducers: send_message(text: String), set_name(name: String)

/** The row types, the table rows and the reducers' parameters, built with `t` (an SDK's `t`). */
export function chatTypes(t) {
  const messageColumns = () => ({ sender: t.identity(), sent: t.timestamp(), text: t.string() });
  return {
    /** The `Message` product type (typespace ref 0 on the server). */
    Message: t.object('Message', messageColumns()),
    /** The `User` product type (typespace ref 1 on the server). */
    User: t.object('User', { identity: t.identity(), name: t.option(t.string()), online: t.bool() }),
    MessageRow: t.row(messageColumns()),
    UserRow: t.row({ identity: t.identity().primaryKey(), name: t.option(t.string()), online: t.bool() }),
    /** The client-callable reducers' parameters, by reducer name (lifecycle reducers are not bound). */
    reducerParams: { send_message: { text: t.string() }, set_name: { name: t.string() } },
  };
}

/** The names of `user`'s primary-key index and unique constraint, as the server names them. */
export const USER_IDENTITY_INDEX = 'user_identity_idx_btree';
export const USER_IDENTITY_KEY = 'user_identity_key';
