using Bridge.Server;

// dotnet run --project src/Bridge.Server: with no Google Cloud settings, an embedded emulator and a demo route whose
// target is this server's own callback; POST an event to http://localhost:8080/api/events/demo and read
// http://localhost:8080/api/outcomes.
if (args is [ServiceBusSendCommand.Name, .. var sendArgs])
{
    return await ServiceBusSendCommand.RunAsync(sendArgs, Console.Out, Console.Error);
}

WebApplication app;
try
{
    app = BridgeServerApp.Build(args);
}
catch (Exception ex) when (ex is PortInUseException or UnprotectedIntakeException or Microsoft.Extensions.Options.OptionsValidationException)
{
    await Console.Error.WriteLineAsync(ex.Message); // one line naming the setting, not a stack trace
    return 1;
}

await app.RunAsync();
return 0;
