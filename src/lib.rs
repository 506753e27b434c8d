//! message-dispatcher: drains a PostgreSQL table of outgoing SMS messages
//! into an HTTP provider at a controlled rate, through an actor pipeline.
//! `main.rs` only reads the settings and calls [`startup::Application`].

pub mod cli;
pub mod configuration;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod migrations;
pub mod pipeline;
pub mod provider;
pub mod redis;
pub mod repository;
pub mod routes;
pub mod signal;
pub mod startup;
pub mod systemd;
pub mod telemetry;
pub mod webhook;
