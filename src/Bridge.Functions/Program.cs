using Bridge.Functions;
using Microsoft.Extensions.Hosting;

BridgeFunctionsApp.Build(args).Run();
