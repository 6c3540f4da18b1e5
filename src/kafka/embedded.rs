//! The embedded broker: librdkafka's mock cluster, a real Kafka-protocol broker on loopback.
//!
//! The mock cluster is not `Send`, so it lives on a thread of its own; this handle talks
//! to that thread. Used by `switchyard dev` (no Kafka to install) and by the tests.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

type Reply = mpsc::Sender<Result<(), String>>;

enum Command {
    CreateTopic { name: String, partitions: i32, reply: Reply },
    BrokerDown { id: i32, reply: Reply },
    BrokerUp { id: i32, reply: Reply },
    RoundTripTime { id: i32, delay: Duration, reply: Reply },
    RequestErrors { api: RDKafkaApiKey, errors: Vec<RDKafkaRespErr>, reply: Reply },
}

/// A running embedded broker; stopped when dropped.
pub struct EmbeddedBroker {
    bootstrap: String,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a cluster of `brokers` brokers on loopback ports chosen by the system.
    pub fn start(brokers: i32) -> Result<EmbeddedBroker, String> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
        let thread = std::thread::Builder::new()
            .name("embedded-broker".into())
            .spawn(move || {
                let cluster = match MockCluster::new(brokers) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Runs until the handle is dropped (the channel closes).
                for cmd in cmd_rx {
                    let (result, reply) = match cmd {
                        Command::CreateTopic { name, partitions, reply } => {
                            (cluster.create_topic(&name, partitions, 1.min(brokers)), reply)
                        }
                        Command::BrokerDown { id, reply } => (cluster.broker_down(id), reply),
                        Command::BrokerUp { id, reply } => (cluster.broker_up(id), reply),
                        Command::RoundTripTime { id, delay, reply } => {
                            (cluster.broker_round_trip_time(id, delay), reply)
                        }
                        Command::RequestErrors { api, errors, reply } => {
                            cluster.request_errors(api, &errors);
                            (Ok(()), reply)
                        }
                    };
                    let _ = reply.send(result.map_err(|e| e.to_string()));
                }
            })
            .map_err(|e| e.to_string())?;
        let bootstrap = ready_rx.recv().map_err(|e| e.to_string())??;
        Ok(EmbeddedBroker { bootstrap, commands: Some(cmd_tx), thread: Some(thread) })
    }

    /// The `bootstrap.servers` list of the cluster.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), String> {
        self.call(|reply| Command::CreateTopic { name: name.to_owned(), partitions, reply })
    }

    /// Takes broker `id` (1-based) down: its connections drop and it refuses new ones.
    pub fn broker_down(&self, id: i32) -> Result<(), String> {
        self.call(|reply| Command::BrokerDown { id, reply })
    }

    pub fn broker_up(&self, id: i32) -> Result<(), String> {
        self.call(|reply| Command::BrokerUp { id, reply })
    }

    /// Delays every response of broker `id` by `delay` (a stalled broker).
    pub fn round_trip_time(&self, id: i32, delay: Duration) -> Result<(), String> {
        self.call(|reply| Command::RoundTripTime { id, delay, reply })
    }

    /// Answers the next requests of kind `api`, from any client, with `errors`, one each.
    pub fn request_errors(&self, api: RDKafkaApiKey, errors: &[RDKafkaRespErr]) -> Result<(), String> {
        self.call(|reply| Command::RequestErrors { api, errors: errors.to_vec(), reply })
    }

    fn call(&self, make: impl FnOnce(Reply) -> Command) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.commands.as_ref().ok_or("broker stopped")?.send(make(tx)).map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())?
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
