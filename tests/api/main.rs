//! Integration tests: the service in-process, a real PostgreSQL (a database
//! per test), a real Redis, and the mock provider over HTTP.

mod cache;
mod dispatch;
mod health;
mod helpers;
mod messages;
mod scheduler;
mod schema;
mod sent_list;
mod shutdown;
