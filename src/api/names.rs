//! The `#[napi]` key builders: JS spells a key the way Rust does (`names::keys`).

use napi::Env;
use napi_derive::napi;

use crate::error::js;
use crate::names::keys::{self, JsId};

#[napi]
pub fn session_key(env: Env, token_hash: JsId) -> napi::Result<String> {
    Ok(keys::session_key(&js(
        &env,
        keys::id_string("tokenHash", token_hash),
    )?))
}

#[napi]
pub fn session_user_key(env: Env, user_id: JsId) -> napi::Result<String> {
    Ok(keys::session_user_key(&js(
        &env,
        keys::id_string("userId", user_id),
    )?))
}

#[napi]
pub fn perm_user_key(env: Env, user_id: JsId) -> napi::Result<String> {
    Ok(keys::perm_user_key(&js(
        &env,
        keys::id_string("userId", user_id),
    )?))
}

#[napi]
pub fn perm_role_key(env: Env, role_id: JsId) -> napi::Result<String> {
    Ok(keys::perm_role_key(&js(
        &env,
        keys::id_string("roleId", role_id),
    )?))
}

#[napi]
pub fn rate_key(env: Env, ip: JsId, endpoint: String) -> napi::Result<String> {
    let ip = js(&env, keys::id_string("ip", ip))?;
    js(&env, keys::check_id("endpoint", &endpoint))?;
    Ok(keys::rate_key(&ip, &endpoint))
}

#[napi]
pub fn lock_key(env: Env, resource: JsId, id: JsId) -> napi::Result<String> {
    let resource = js(&env, keys::id_string("resource", resource))?;
    let id = js(&env, keys::id_string("id", id))?;
    Ok(keys::lock_key(&resource, &id))
}
