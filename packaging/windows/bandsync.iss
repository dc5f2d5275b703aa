; Inno Setup 6 script: the Windows installer of BandSync Desktop.
; NOT RUN HERE (no Windows machine): CI's windows job runs it through packaging/build.py,
; which passes the defines below, e.g.
;   iscc /DAppVersion=0.1.0 /DSourceDir=dist\bandsync-desktop /DOutputDir=dist
;        /DIconFile=resources\icons\bandsync.ico /DLicenseFile=LICENSE packaging\windows\bandsync.iss
; Installs per user by default (no admin prompt), or for all users when run elevated.

#ifndef AppVersion
  #error AppVersion is not defined: run through packaging/build.py
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\bandsync-desktop"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif
#ifndef IconFile
  #define IconFile "..\..\resources\icons\bandsync.ico"
#endif
#ifndef LicenseFile
  #define LicenseFile "..\..\LICENSE"
#endif

#define AppName "BandSync"
#define AppExe "bandsync-desktop.exe"

[Setup]
; A fixed AppId keeps upgrades in place; never change it.
AppId={{6C1E8B2A-3F4D-4B7A-9E51-0B5D2C8F7A13}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=BandSync Desktop developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
LicenseFile={#LicenseFile}
OutputDir={#OutputDir}
OutputBaseFilename=BandSync-Setup-{#AppVersion}
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"
; Phones reach the console over the LAN: let Windows Firewall admit it (needs admin rights).
Name: "firewall"; Description: "Allow phones on the local network to connect (Windows Firewall rule)"; Check: IsAdminInstallMode

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autoprograms}\{#AppName} server (headless)"; Filename: "{app}\bandsync-server.exe"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{sys}\netsh.exe"; Parameters: "advfirewall firewall add rule name=""BandSync"" dir=in action=allow program=""{app}\{#AppExe}"" profile=private enable=yes"; Flags: runhidden; Tasks: firewall
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallRun]
Filename: "{sys}\netsh.exe"; Parameters: "advfirewall firewall delete rule name=""BandSync"""; Flags: runhidden; RunOnceId: "DelFirewallRule"
