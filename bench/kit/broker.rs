//! `benchkit broker`: the embedded broker as a process of its own; prints its bootstrap
//! address on the first line of stdout and runs until it is killed.

use std::io::Write;

use switchyard::kafka::EmbeddedBroker;

#[derive(clap::Args)]
pub struct Args {
    /// Topics to create, `name:partitions`.
    #[arg(long = "topic")]
    topics: Vec<String>,
}

pub fn run(args: Args) -> Result<(), String> {
    let broker = EmbeddedBroker::start(1)?;
    for t in &args.topics {
        let (name, partitions) = t.split_once(':').ok_or("--topic wants name:partitions")?;
        broker.create_topic(name, partitions.parse().map_err(|_| "partitions is a number")?)?;
    }
    println!("{}", broker.bootstrap_servers());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    // The broker lives on its own thread; this one waits until a signal ends the process.
    loop {
        std::thread::park();
    }
}
