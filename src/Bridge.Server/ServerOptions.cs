namespace Bridge.Server;

/// <summary>The self-hosted runner's own settings, bound from <c>Bridge:Server</c>.</summary>
public sealed class ServerOptions
{
    public const string SectionName = "Bridge:Server";

    /// <summary>The embedded Service Bus endpoint's queue, bound to the <c>demo</c> route.</summary>
    public const string DemoServiceBusQueue = "demo-in";

    /// <summary>
    /// The embedded Service Bus endpoint's hand-back queue, created so a function app pointed at it (the
    /// <c>local.settings.emulators.json</c> sample) has its hand-back trigger's queue, as infra creates it when deployed.
    /// </summary>
    public const string DemoHandBackQueue = "bridge-handback";

    public const int DefaultServiceBusPort = 5672;

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

    /// <summary>
    /// Host the Service Bus emulator in-process too, with the <c>demo-in</c> queue feeding the <c>demo</c> route. Default:
    /// on with the embedded Cloud Tasks emulator, unless a Service Bus connection or intake queue is configured.
    /// </summary>
    public bool? EmbeddedServiceBus { get; set; }

    /// <summary>
    /// Where the embedded Service Bus emulator keeps its messages; default: a <c>servicebus</c> folder inside
    /// <see cref="EmulatorData"/> when that is set (one setting keeps both emulators across restarts), else in memory.
    /// </summary>
    public string? ServiceBusData { get; set; }

    /// <summary>The embedded Service Bus emulator's data folder as configured or defaulted; null: in memory.</summary>
    public string? ServiceBusDataFolder =>
        !string.IsNullOrWhiteSpace(ServiceBusData) ? ServiceBusData
        : !string.IsNullOrWhiteSpace(EmulatorData) ? Path.Combine(EmulatorData, "servicebus")
        : null;

    /// <summary>AMQP port (loopback) of the embedded Service Bus emulator; 0 = any free port.</summary>
    public int ServiceBusPort { get; set; } = DefaultServiceBusPort;

    /// <summary>Serve recent outcomes at <c>GET /api/outcomes</c> (the Local sink). Never on in production by default.</summary>
    public bool ExposeOutcomes { get; set; }

    /// <summary>Also append outcomes to this JSON-lines file (the Local sink).</summary>
    public string? OutcomesFile { get; set; }
}
