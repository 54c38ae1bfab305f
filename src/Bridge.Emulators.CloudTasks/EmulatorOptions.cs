namespace Bridge.Emulators.CloudTasks;

/// <summary>Settings of the Cloud Tasks emulator; bound from the <c>Emulator</c> section, the command line and the environment.</summary>
public sealed class EmulatorOptions
{
    public const string SectionName = "Emulator";
    public const int DefaultGrpcPort = 8123;
    public const int DefaultHttpPort = 8124;

    /// <summary>Plaintext HTTP/2 port for gRPC (0: any free port).</summary>
    public int Port { get; set; } = DefaultGrpcPort;

    /// <summary>HTTP/1.1 port for REST, OIDC discovery and JWKS, health and admin (0: any free port).</summary>
    public int HttpPort { get; set; } = DefaultHttpPort;

    /// <summary>Address to listen on; loopback by default so the emulator is never exposed by accident.</summary>
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>Folder for the SQLite database (queues, tasks, tombstones, IAM, signing key); empty: in memory.</summary>
    public string? Data { get; set; }

    /// <summary>With <see cref="Data"/>: whether an acknowledged change survives a killed process (default) or a power loss too.</summary>
    public EmulatorDurability Durability { get; set; } = EmulatorDurability.ProcessCrash;

    /// <summary>The OIDC issuer (<c>iss</c>) of tokens; default <c>http://localhost:&lt;http port&gt;</c>.</summary>
    public string? Issuer { get; set; }

    /// <summary>Queues to create at start, as full names or <c>project/location/queue</c>; comma separated.</summary>
    public string? Queues { get; set; }

    /// <summary>Base URL that App Engine tasks are dispatched to (service/version routing is carried in headers).</summary>
    public string AppEngineHost { get; set; } = "http://localhost:8080";

    /// <summary>How long a deleted queue's name stays reserved (the real service: 7 days).</summary>
    public TimeSpan QueueNameReuseDelay { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Lifetime of minted OIDC and OAuth tokens.</summary>
    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromHours(1);

    public EmulatorOptions Clone() => (EmulatorOptions)MemberwiseClone();

    internal static IEnumerable<string> SplitQueues(string? queues) =>
        (queues ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>A <see cref="Queues"/> entry as a queue name; null when it is neither form.</summary>
    internal static Bridge.CloudTasks.QueueName? ToQueueName(string entry)
    {
        var parts = entry.Split('/');
        var name = parts.Length == 3 ? $"projects/{parts[0]}/locations/{parts[1]}/queues/{parts[2]}" : entry;
        return Bridge.CloudTasks.QueueName.TryParse(name, out var parsed) ? parsed : null;
    }
}
