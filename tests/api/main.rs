//! Integration tests: the service in-process, a real PostgreSQL (a database
//! per test), a real Redis, and the mock provider over HTTP.

mod bad_input;
mod cache;
mod cluster;
mod config_docs;
mod crash;
mod dispatch;
mod enqueue;
mod fencing;
mod health;
mod helpers;
mod layout;
mod leases;
mod messages;
mod metrics;
mod network;
mod openapi;
mod outages;
mod panics;
mod plans;
mod priority;
mod process;
mod provider_faults;
mod providers;
mod proxy;
mod rate_limit;
mod receipts;
mod retention;
mod scheduler;
mod schema;
mod sent_list;
mod shutdown;
mod soak;
mod suppressions;
mod webhooks;
