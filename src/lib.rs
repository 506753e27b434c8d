//! message-dispatcher: drains a PostgreSQL table of outgoing SMS messages
//! into an HTTP provider at a controlled rate, through an actor pipeline.
//! `main.rs` only reads the settings and calls [`startup::Application`].

pub mod actors;
pub mod configuration;
pub mod domain;
pub mod error;
pub mod mock_provider;
pub mod provider;
pub mod redis;
pub mod repository;
pub mod routes;
pub mod startup;
pub mod telemetry;
