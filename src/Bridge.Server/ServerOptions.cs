namespace Bridge.Server;

/// <summary>The self-hosted runner's own settings, bound from <c>Bridge:Server</c>.</summary>
public sealed class ServerOptions
{
    public const string SectionName = "Bridge:Server";

    /// <summary>HTTP/1.1 port of the API (<c>/api/...</c>) and, when embedded, the emulator's REST, OIDC and JWKS.</summary>
    public int Port { get; set; } = 8080;

    /// <summary>Plaintext HTTP/2 port of the embedded emulator's gRPC service.</summary>
    public int EmulatorGrpcPort { get; set; } = 8123;

    /// <summary>Loopback by default; containers set <c>0.0.0.0</c>.</summary>
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// Host the Cloud Tasks emulator in-process. Default: on when nothing points at Google Cloud or another emulator
    /// and no routes are configured (the one-command local run).
    /// </summary>
    public bool? EmbeddedEmulator { get; set; }

    /// <summary>Where the embedded emulator keeps its state; empty: in memory.</summary>
    public string? EmulatorData { get; set; }

    /// <summary>Serve recent outcomes at <c>GET /api/outcomes</c> (the Local sink). Never on in production by default.</summary>
    public bool ExposeOutcomes { get; set; }

    /// <summary>Also append outcomes to this JSON-lines file (the Local sink).</summary>
    public string? OutcomesFile { get; set; }
}
